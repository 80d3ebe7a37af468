/** Built-in sinks. */
export { collect, type CollectSink } from "./memory.ts"
export { logger } from "./logger.ts"
export { files as directory, type DirectorySinkOptions } from "./fileSink.ts"
export { stream, type StreamOutput } from "./stream.ts"
