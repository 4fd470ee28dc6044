// Meridian's DAX port through the published JavaScript DAX client, as a Node.js user runs it.
//
//   NODE_PATH=<folder with @amazon-dax-sdk/client-dax> node dax_client.cjs < plan.json
//
// The plan (JSON on stdin, from tests/integration/test_dax_js_client.py) names
// the DAX endpoint, the tables (created beforehand with boto3) and the item of
// every attribute type.  Every call goes through the DAX client's `Dax` class
// (the low-level, DynamoDB-JSON shaped client): put/get, update with
// ReturnValues, a failing conditional put, delete, query with Limit paging and
// a filter, scan, batch write/get, transact write/get.  One JSON document is
// printed on stdout with what the client answered, exactly as it parsed it
// (binary as {"base64": ...}), for the Python test to compare with boto3's
// view of the same items.  A call that throws where it should not aborts the
// script with the step name and the client's error on stderr.
"use strict";

const { Dax } = require("@amazon-dax-sdk/client-dax");

const PAGE_LIMIT = 2;
const SCAN_PAGE_LIMIT = 3;
const PAGES_MAX = 100;

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on("data", (chunk) => chunks.push(chunk));
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    process.stdin.on("error", reject);
  });
}

// {"base64": "..."} in the plan -> a Buffer, as a user passes binary values.
function revive(value) {
  if (Array.isArray(value)) return value.map(revive);
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "base64") return Buffer.from(value.base64, "base64");
    return Object.fromEntries(keys.map((k) => [k, revive(value[k])]));
  }
  return value;
}

// JSON.stringify would write a Buffer as {type, data}: show base64 instead.
function plain(value) {
  if (value instanceof Uint8Array) return { base64: Buffer.from(value).toString("base64") };
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.keys(value).map((k) => [k, plain(value[k])]));
  }
  return value;
}

function describeError(error) {
  return {
    name: error.name,
    code: error.code,
    message: error.message,
    statusCode: error.statusCode,
    codeSeq: error.codeSeq,
    cancellationReasons: plain(error.cancellationReasons),
  };
}

// Run one named step; a throw is reported with the step's name so a failure says which request broke.
async function step(name, fn) {
  try {
    return await fn();
  } catch (error) {
    const failure = new Error(`step ${name} failed: ${error && error.stack ? error.stack : error}`);
    failure.details = error ? describeError(error) : null;
    throw failure;
  }
}

// A step that must fail: its error, or null when it succeeded.
async function failure(name, fn) {
  try {
    await fn();
    return null;
  } catch (error) {
    return describeError(error);
  }
}

async function pages(name, call, params, limit) {
  const found = [];
  let start;
  for (let n = 0; n < PAGES_MAX; n++) {
    const page = await step(`${name} page ${n}`, () =>
      call({ ...params, Limit: limit, ...(start ? { ExclusiveStartKey: start } : {}) }),
    );
    const { Items, Count, ScannedCount, LastEvaluatedKey } = page;
    found.push({ Items, Count, ScannedCount, LastEvaluatedKey });
    start = page.LastEvaluatedKey;
    if (!start) break;
  }
  return found;
}

async function run(plan, dax) {
  const { hashTable: h, rangeTable: hr } = plan;
  const out = {};

  // put/get with every attribute type
  const everyKey = { pk: { S: "every" } };
  const everyItem = { ...everyKey, ...plan.everyType };
  out.putEvery = await step("put every type", () => dax.putItem({ TableName: h, Item: everyItem }));
  out.getEvery = await step("get every type", () => dax.getItem({ TableName: h, Key: everyKey }));
  out.getMissing = await step("get missing", () => dax.getItem({ TableName: h, Key: { pk: { S: "nobody" } } }));

  // update with ALL_NEW and UPDATED_OLD
  const updKey = { pk: { S: "upd" } };
  const updItem = { ...updKey, a: { N: "1" }, keep: { S: "k" } };
  await step("put for update", () => dax.putItem({ TableName: h, Item: updItem }));
  out.updateAllNew = await step("update ALL_NEW", () => dax.updateItem({
    TableName: h, Key: updKey, UpdateExpression: "SET a = a + :one, b = :b",
    ExpressionAttributeValues: { ":one": { N: "1" }, ":b": { S: "new" } }, ReturnValues: "ALL_NEW",
  }));
  out.updateUpdatedOld = await step("update UPDATED_OLD", () => dax.updateItem({
    TableName: h, Key: updKey, UpdateExpression: "SET a = a + :ten, #c = :c REMOVE keep",
    ExpressionAttributeNames: { "#c": "count" },
    ExpressionAttributeValues: { ":ten": { N: "10" }, ":c": { N: "-2.5" } }, ReturnValues: "UPDATED_OLD",
  }));

  // a conditional put that must fail, then delete
  const condKey = { pk: { S: "cond" } };
  await step("put for condition", () => dax.putItem({ TableName: h, Item: { ...condKey, v: { N: "1" } } }));
  out.conditionalPut = await failure("conditional put", () => dax.putItem({
    TableName: h, Item: { ...condKey, v: { N: "2" } }, ConditionExpression: "attribute_not_exists(pk)",
  }));
  out.deleteOld = await step("delete ALL_OLD", () =>
    dax.deleteItem({ TableName: h, Key: condKey, ReturnValues: "ALL_OLD" }));
  out.getDeleted = await step("get deleted", () => dax.getItem({ TableName: h, Key: condKey }));

  // query with Limit paging (numeric range keys, negatives and decimals) and a filter, then scan
  for (const sk of plan.rangeKeys) {
    await step(`put sk ${sk}`, () => dax.putItem({
      TableName: hr, Item: { pk: { S: "page" }, sk: { N: sk }, odd: { BOOL: plan.oddRangeKeys.includes(sk) } },
    }));
  }
  const query = (params) => dax.query(params);
  out.queryPages = await pages("query", query, {
    TableName: hr, KeyConditionExpression: "pk = :p", ExpressionAttributeValues: { ":p": { S: "page" } },
  }, PAGE_LIMIT);
  out.queryFiltered = await step("query filtered", () => dax.query({
    TableName: hr, KeyConditionExpression: "pk = :p AND sk BETWEEN :lo AND :hi", FilterExpression: "odd = :t",
    ExpressionAttributeValues: { ":p": { S: "page" }, ":lo": { N: "-100" }, ":hi": { N: "100" }, ":t": { BOOL: true } },
    ScanIndexForward: false,
  }));
  const scan = (params) => dax.scan(params);
  out.scanPages = await pages("scan", scan, { TableName: hr, ConsistentRead: true }, SCAN_PAGE_LIMIT);

  // batch write + batch get
  const batchKeys = [0, 1, 2, 3, 4].map((i) => ({ pk: { S: `batch-${i}` } }));
  out.batchWrite = await step("batch write", () => dax.batchWriteItem({ RequestItems: {
    [h]: batchKeys.map((key, i) => ({
      PutRequest: { Item: { ...key, v: { N: String(i) }, b: { B: Buffer.from([i, 255]) } } },
    })),
  } }));
  out.batchDelete = await step("batch delete", () => dax.batchWriteItem({ RequestItems: {
    [h]: [{ DeleteRequest: { Key: batchKeys[4] } }],
  } }));
  out.batchGet = await step("batch get", () => dax.batchGetItem({ RequestItems: {
    [h]: { Keys: batchKeys }, [hr]: { Keys: [{ pk: { S: "page" }, sk: { N: plan.rangeKeys[0] } }] },
  } }));

  // transact write + transact get, then a cancelled transaction
  out.transactWrite = await step("transact write", () => dax.transactWriteItems({ TransactItems: [
    { Put: { TableName: h, Item: { pk: { S: "tx-a" }, n: { N: "1" }, tags: { SS: ["x", "y"] } } } },
    { Update: { TableName: h, Key: { pk: { S: "tx-b" } }, UpdateExpression: "SET n = :n",
      ExpressionAttributeValues: { ":n": { N: "2" } } } },
    { Put: { TableName: hr,
      Item: { pk: { S: "tx-r" }, sk: { N: "-7.25" }, m: { M: { k: { L: [{ NULL: true }] } } } } } },
  ] }));
  out.transactGet = await step("transact get", () => dax.transactGetItems({ TransactItems: [
    { Get: { TableName: h, Key: { pk: { S: "tx-a" } } } },
    { Get: { TableName: h, Key: { pk: { S: "tx-b" } } } },
    { Get: { TableName: hr, Key: { pk: { S: "tx-r" }, sk: { N: "-7.25" } } } },
    { Get: { TableName: h, Key: { pk: { S: "tx-none" } } } },
  ] }));
  out.transactCancelled = await failure("transact cancelled", () => dax.transactWriteItems({ TransactItems: [
    { ConditionCheck: { TableName: h, Key: { pk: { S: "tx-a" } }, ConditionExpression: "n = :nine",
      ExpressionAttributeValues: { ":nine": { N: "9" } } } },
    { Delete: { TableName: h, Key: { pk: { S: "tx-b" } } } },
  ] }));
  return out;
}

async function main() {
  const plan = revive(JSON.parse(await readStdin()));
  const dax = new Dax({
    endpoints: [plan.endpoint],
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxRetries: 0,
  });
  try {
    const out = await run(plan, dax);
    process.stdout.write(JSON.stringify(plain(out)) + "\n");
  } finally {
    dax.shutdown();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`${error.stack || error}\n`);
    if (error.details) process.stderr.write(`client error: ${JSON.stringify(error.details)}\n`);
    process.exit(1);
  },
);
