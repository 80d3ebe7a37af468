/** Built-in sources. */
export { fromIterable } from "./memory.ts"
export { generator, type GeneratorOptions } from "./generator.ts"
export { files, type FilesOptions } from "./files.ts"
export { fromStream, type StreamSourceOptions } from "./stream.ts"
