{
  "dfmVersion": "1.1",
  "taskInfo": {
    "name": "data_platform",
    "sourceEndpoint": "",
    "operation": ""
  },
  "fileInfo": {
    "name": "20211201-120000000.csv",
    "extension": "csv",
    "location": "EDW.SAMPLE__ct",
    "content": "data",
    "recordCount": 3,
    "errorCount": 0
  },
  "formatInfo": {
    "format": "delimited",
    "options": {
      "fieldDelimiter": ",",
      "recordDelimiter": "\n",
      "nullValue": "",
      "quoteChar": "\"",
      "escapeChar": ""
    }
  },
  "dataInfo": {
    "sourceSchema": "EDW",
    "sourceTable": "SAMPLE",
    "targetSchema": "EDW",
    "targetTable": "SAMPLE__ct",
    "tableVersion": 1,
    "columns": [
      {
        "ordinal": 1,
        "name": "header__change_seq",
        "type": "STRING",
        "length": 35,
        "precision": 0,
        "scale": 0,
        "primaryKeyPos": 0
      },
      {
        "ordinal": 2,
        "name": "header__change_oper",
        "type": "STRING",
        "length": 1,
        "precision": 0,
        "scale": 0,
        "primaryKeyPos": 0
      },
      {
        "ordinal": 3,
        "name": "header__timestamp",
        "type": "DATETIME",
        "length": 0,
        "precision": 0,
        "scale": 0,
        "primaryKeyPos": 0
      },
      {
        "ordinal": 4,
        "name": "SAMPLE_ID",
        "type": "INT4",
        "length": 10,
        "precision": 0,
        "scale": 0,
        "primaryKeyPos": 1
      },
      {
        "ordinal": 5,
        "name": "SAMPLE_NAME",
        "type": "STRING",
        "length": 100,
        "precision": 0,
        "scale": 0,
        "primaryKeyPos": 0
      },
      {
        "ordinal": 6,
        "name": "FARE_AMOUNT",
        "type": "NUMERIC",
        "length": 0,
        "precision": 10,
        "scale": 2,
        "primaryKeyPos": 0
      },
      {
        "ordinal": 7,
        "name": "IS_ACTIVE",
        "type": "BOOLEAN",
        "length": 0,
        "precision": 0,
        "scale": 0,
        "primaryKeyPos": 0
      },
      {
        "ordinal": 8,
        "name": "EDW_INSERTED_DTM",
        "type": "DATETIME",
        "length": 0,
        "precision": 0,
        "scale": 0,
        "primaryKeyPos": 0
      },
      {
        "ordinal": 9,
        "name": "EDW_UPDATED_DTM",
        "type": "DATETIME",
        "length": 0,
        "precision": 0,
        "scale": 0,
        "primaryKeyPos": 0
      }
    ]
  }
}
