/**
 * Kafka wire primitives: a cursor reader and a growable writer (big-endian, zig-zag varints, classic strings,
 * arrays and bytes, and the compact arrays and tagged fields of flexible versions).
 */

/** Reads Kafka primitives from a buffer, advancing an offset. */
export class Reader {
  offset = 0
  readonly buf: Buffer
  constructor(buf: Buffer) {
    this.buf = buf
  }
  int8(): number {
    return this.buf.readInt8(this.offset++)
  }
  bool(): boolean {
    return this.int8() !== 0
  }
  int16(): number {
    const v = this.buf.readInt16BE(this.offset)
    this.offset += 2
    return v
  }
  int32(): number {
    const v = this.buf.readInt32BE(this.offset)
    this.offset += 4
    return v
  }
  int64(): bigint {
    const v = this.buf.readBigInt64BE(this.offset)
    this.offset += 8
    return v
  }
  /** An int64 as a number (offsets, timestamps and producer ids fit in 2^53 here). */
  int64n(): number {
    return Number(this.int64())
  }
  uvarint(): number {
    let v = 0
    let shift = 0
    for (;;) {
      const b = this.buf[this.offset++]!
      v += (b & 0x7f) * 2 ** shift
      if (b < 0x80) return v
      shift += 7
    }
  }
  varint(): number {
    const u = this.uvarint()
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2
  }
  raw(n: number): Buffer {
    const v = this.buf.subarray(this.offset, this.offset + n)
    this.offset += n
    return v
  }
  string(): string {
    const n = this.int16()
    return n < 0 ? "" : this.raw(n).toString("utf8")
  }
  nullableString(): string | null {
    const n = this.int16()
    return n < 0 ? null : this.raw(n).toString("utf8")
  }
  bytes(): Buffer | null {
    const n = this.int32()
    return n < 0 ? null : this.raw(n)
  }
  array<A>(f: (r: Reader) => A): Array<A> {
    const n = this.int32()
    const out: Array<A> = []
    for (let i = 0; i < n; i++) out.push(f(this))
    return out
  }
  /** `null` for a null array (length -1), e.g. Metadata's "all topics". */
  nullableArray<A>(f: (r: Reader) => A): Array<A> | null {
    if (this.buf.readInt32BE(this.offset) < 0) {
      this.offset += 4
      return null
    }
    return this.array(f)
  }
  skipTaggedFields(): void {
    const n = this.uvarint()
    for (let i = 0; i < n; i++) {
      this.uvarint()
      this.offset += this.uvarint()
    }
  }
}

/** Builds a Kafka message; `int32` placeholders can be patched for sizes. */
export class Writer {
  private buf = Buffer.allocUnsafe(256)
  length = 0
  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n))
    this.buf.copy(next, 0, 0, this.length)
    this.buf = next
  }
  int8(v: number): this {
    this.ensure(1)
    this.buf.writeInt8(v, this.length++)
    return this
  }
  bool(v: boolean): this {
    return this.int8(v ? 1 : 0)
  }
  int16(v: number): this {
    this.ensure(2)
    this.buf.writeInt16BE(v, this.length)
    this.length += 2
    return this
  }
  int32(v: number): this {
    this.ensure(4)
    this.buf.writeInt32BE(v, this.length)
    this.length += 4
    return this
  }
  uint32(v: number): this {
    this.ensure(4)
    this.buf.writeUInt32BE(v, this.length)
    this.length += 4
    return this
  }
  int64(v: number | bigint): this {
    this.ensure(8)
    this.buf.writeBigInt64BE(BigInt(v), this.length)
    this.length += 8
    return this
  }
  uvarint(v: number): this {
    this.ensure(10)
    while (v >= 0x80) {
      this.buf[this.length++] = (v % 0x80) | 0x80
      v = Math.floor(v / 0x80)
    }
    this.buf[this.length++] = v
    return this
  }
  varint(v: number): this {
    return this.uvarint(v >= 0 ? v * 2 : -v * 2 - 1)
  }
  raw(b: Uint8Array): this {
    this.ensure(b.length)
    this.buf.set(b, this.length)
    this.length += b.length
    return this
  }
  string(s: string | null): this {
    if (s === null) return this.int16(-1)
    const b = Buffer.from(s, "utf8")
    return this.int16(b.length).raw(b)
  }
  bytes(b: Uint8Array | null): this {
    if (b === null) return this.int32(-1)
    return this.int32(b.length).raw(b)
  }
  array<A>(items: ReadonlyArray<A>, f: (w: Writer, a: A) => void): this {
    this.int32(items.length)
    for (const item of items) f(this, item)
    return this
  }
  compactArray<A>(items: ReadonlyArray<A>, f: (w: Writer, a: A) => void): this {
    this.uvarint(items.length + 1)
    for (const item of items) f(this, item)
    return this
  }
  /** An empty tagged-field section. */
  tags(): this {
    return this.uvarint(0)
  }
  /** Writes a 4-byte placeholder and returns its position for {@link patchInt32}. */
  placeholder(): number {
    const at = this.length
    this.int32(0)
    return at
  }
  patchInt32(at: number, v: number): void {
    this.buf.writeInt32BE(v, at)
  }
  toBuffer(): Buffer {
    return this.buf.subarray(0, this.length)
  }
}
