/** CRC-32C (Castagnoli), the checksum of a v2 record batch. */

const TABLE = (() => {
  const t = new Int32Array(256)
  for (let i = 0; i < 256; i++) {
    let c = i
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1
    t[i] = c
  }
  return t
})()

/** The CRC-32C of `buf` as an unsigned 32-bit number. */
export const crc32c = (buf: Uint8Array): number => {
  let c = -1
  for (let i = 0; i < buf.length; i++) c = TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8)
  return (c ^ -1) >>> 0
}
