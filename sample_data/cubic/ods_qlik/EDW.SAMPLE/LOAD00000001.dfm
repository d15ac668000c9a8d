{
  "dfmVersion": "1.1",
  "taskInfo": {
    "name": "data_platform",
    "sourceEndpoint": "",
    "operation": ""
  },
  "fileInfo": {
    "name": "LOAD00000001.csv.gz",
    "extension": "gz",
    "location": "EDW.SAMPLE",
    "content": "data",
    "recordCount": 5,
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
    "targetTable": "SAMPLE",
    "tableVersion": 1,
    "columns": [
      {
        "ordinal": 1,
        "name": "SAMPLE_ID",
        "type": "INT4",
        "length": 10,
        "precision": 0,
        "scale": 0,
        "primaryKeyPos": 1
      },
      {
        "ordinal": 2,
        "name": "SAMPLE_NAME",
        "type": "STRING",
        "length": 100,
        "precision": 0,
        "scale": 0,
        "primaryKeyPos": 0
      },
      {
        "ordinal": 3,
        "name": "FARE_AMOUNT",
        "type": "NUMERIC",
        "length": 0,
        "precision": 10,
        "scale": 2,
        "primaryKeyPos": 0
      },
      {
        "ordinal": 4,
        "name": "IS_ACTIVE",
        "type": "BOOLEAN",
        "length": 0,
        "precision": 0,
        "scale": 0,
        "primaryKeyPos": 0
      },
      {
        "ordinal": 5,
        "name": "EDW_INSERTED_DTM",
        "type": "DATETIME",
        "length": 0,
        "precision": 0,
        "scale": 0,
        "primaryKeyPos": 0
      },
      {
        "ordinal": 6,
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
