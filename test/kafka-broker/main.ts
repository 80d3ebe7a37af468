/**
 * Runs the test broker as its own process (so a test can SIGKILL it): `node test/kafka-broker/main.ts
 * [--port N] [--data-dir DIR] [--transaction-timeout-ms N]`. Prints `PORT <n>` once listening.
 */
import { parseArgs } from "node:util"
import { start } from "./Broker.ts"

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    "data-dir": { type: "string" },
    "transaction-timeout-ms": { type: "string" },
    partitions: { type: "string" }
  }
})
const broker = await start({
  port: Number(values.port ?? 0),
  ...(values["data-dir"] !== undefined ? { dataDir: values["data-dir"] } : {}),
  ...(values["transaction-timeout-ms"] !== undefined
    ? { transactionTimeoutMs: Number(values["transaction-timeout-ms"]) }
    : {}),
  ...(values.partitions !== undefined ? { defaultPartitions: Number(values.partitions) } : {})
})
process.stdout.write(`PORT ${broker.port}\n`)
const stop = () => void broker.stop().then(() => process.exit(0))
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
