// DynamoDB Streams through the AWS SDK for JavaScript v3, as a Node.js user runs it.
//
//   NODE_PATH=<folder with @aws-sdk/*> node streams_client.cjs <endpoint> <table name>
//
// Creates a table with a NEW_AND_OLD_IMAGES stream, makes one INSERT, MODIFY
// and REMOVE, reads them back with DynamoDBStreamsClient (ListStreams,
// DescribeStream, GetShardIterator, GetRecords) and prints one JSON document
// on stdout for tests/compat/test_streams_clients.py to check.  Everything the
// SDK parsed is printed as it parsed it (dates as ISO strings, binary as
// base64), so a field it could not read shows up as missing or wrong.
"use strict";

const {
  DynamoDBClient,
  CreateTableCommand,
  DeleteTableCommand,
  PutItemCommand,
  UpdateItemCommand,
  DeleteItemCommand,
  waitUntilTableExists,
} = require("@aws-sdk/client-dynamodb");
const {
  DynamoDBStreamsClient,
  ListStreamsCommand,
  DescribeStreamCommand,
  GetShardIteratorCommand,
  GetRecordsCommand,
} = require("@aws-sdk/client-dynamodb-streams");

const RECORDS_TIMEOUT_MS = 20000;
const POLL_PAUSE_MS = 200;
const EXPECTED_RECORDS = 3;

const [endpoint, tableName] = process.argv.slice(2);
const config = {
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
  maxAttempts: 1,
};
const ddb = new DynamoDBClient(config);
const streams = new DynamoDBStreamsClient(config);

// JSON.stringify would write a Uint8Array as an object of indexes: show base64.
function plain(value) {
  return JSON.parse(
    JSON.stringify(value, (_, v) => (v instanceof Uint8Array ? { base64: Buffer.from(v).toString("base64") } : v)),
  );
}

async function failure(send) {
  try {
    await send();
    return null;
  } catch (error) {
    return { name: error.name, message: error.message, status: error.$metadata && error.$metadata.httpStatusCode };
  }
}

async function allShards(streamArn) {
  const shards = [];
  let start;
  do {
    const page = await streams.send(
      new DescribeStreamCommand({ StreamArn: streamArn, Limit: 1, ExclusiveStartShardId: start }),
    );
    shards.push(...page.StreamDescription.Shards);
    start = page.StreamDescription.LastEvaluatedShardId;
  } while (start);
  return shards;
}

// Every record readable now from each shard, following NextShardIterator until a read comes back empty.
async function readAll(streamArn, shards) {
  const found = [];
  for (const shard of shards) {
    let iterator = (
      await streams.send(
        new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shard.ShardId, ShardIteratorType: "TRIM_HORIZON" }),
      )
    ).ShardIterator;
    while (iterator) {
      const page = await streams.send(new GetRecordsCommand({ ShardIterator: iterator }));
      found.push(...page.Records.map((record) => ({ shardId: shard.ShardId, record })));
      if (page.Records.length === 0) break;
      iterator = page.NextShardIterator;
    }
  }
  return found;
}

async function main() {
  const created = await ddb.send(
    new CreateTableCommand({
      TableName: tableName,
      AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      BillingMode: "PAY_PER_REQUEST",
      StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
    }),
  );
  await waitUntilTableExists({ client: ddb, maxWaitTime: 30, minDelay: 1 }, { TableName: tableName });
  const key = { id: { S: "js-1" } };
  const item = {
    ...key,
    n: { N: "42" },
    b: { B: Buffer.from("meridian") },
    tags: { SS: ["a", "b"] },
    nested: { M: { list: { L: [{ N: "1" }, { S: "two" }, { BOOL: true }, { NULL: true }] } } },
  };
  await ddb.send(new PutItemCommand({ TableName: tableName, Item: item }));
  await ddb.send(
    new UpdateItemCommand({
      TableName: tableName,
      Key: key,
      UpdateExpression: "SET n = n + :one",
      ExpressionAttributeValues: { ":one": { N: "1" } },
    }),
  );
  await ddb.send(new DeleteItemCommand({ TableName: tableName, Key: key }));

  const streamArn = created.TableDescription.LatestStreamArn;
  const listed = await streams.send(new ListStreamsCommand({ TableName: tableName }));
  const description = (await streams.send(new DescribeStreamCommand({ StreamArn: streamArn }))).StreamDescription;
  const shards = await allShards(streamArn);

  let found = [];
  const deadline = Date.now() + RECORDS_TIMEOUT_MS;
  while (Date.now() < deadline) {
    found = await readAll(streamArn, shards);
    if (found.length >= EXPECTED_RECORDS) break;
    await new Promise((resolve) => setTimeout(resolve, POLL_PAUSE_MS));
  }

  // AFTER_SEQUENCE_NUMBER of the first record: the other two, from its shard.
  let afterFirst = [];
  if (found.length > 0) {
    const first = found[0];
    const iterator = (
      await streams.send(
        new GetShardIteratorCommand({
          StreamArn: streamArn,
          ShardId: first.shardId,
          ShardIteratorType: "AFTER_SEQUENCE_NUMBER",
          SequenceNumber: first.record.dynamodb.SequenceNumber,
        }),
      )
    ).ShardIterator;
    afterFirst = (await streams.send(new GetRecordsCommand({ ShardIterator: iterator }))).Records;
  }

  const errors = {
    garbledIterator: await failure(() => streams.send(new GetRecordsCommand({ ShardIterator: "not-an-iterator" }))),
    unknownStream: await failure(() =>
      streams.send(new DescribeStreamCommand({ StreamArn: streamArn.replace(tableName, `${tableName}-gone`) })),
    ),
  };
  await ddb.send(new DeleteTableCommand({ TableName: tableName }));

  process.stdout.write(
    JSON.stringify({
      createdStreamArn: streamArn,
      createdStreamLabel: created.TableDescription.LatestStreamLabel,
      listed: plain(listed.Streams),
      description: plain({ ...description, Shards: undefined }),
      shards: plain(shards),
      records: plain(found.map((entry) => entry.record)),
      afterFirst: plain(afterFirst),
      errors,
    }),
  );
}

main().catch((error) => {
  process.stderr.write(`${error.name}: ${error.message}\n${error.stack}\n`);
  process.exit(1);
});
