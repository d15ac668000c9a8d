"""totesys: an OLTP database of a design and sales business, extracted incrementally."""
