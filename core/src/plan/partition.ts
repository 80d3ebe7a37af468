/**
 * Stable partitioning: the same key lands in the same partition in every
 * runtime and process (no seeded or engine-specific hashing), because keyed
 * state and snapshots are stored per partition and move between members.
 */

/** The default partition count of a job (a prime, as Jet uses). */
export const DEFAULT_PARTITION_COUNT = 271

const fnv1a = (text: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** Final avalanche so neighbouring integers spread over partitions (murmur3 fmix32). */
const mix = (h: number): number => {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/**
 * A 32-bit hash of a key. Strings and numbers hash by value; other keys by
 * their JSON form, so structurally equal plain objects share a partition.
 */
export const stableHash = (key: unknown): number => {
  switch (typeof key) {
    case "string":
      return mix(fnv1a(key))
    case "number":
      return Number.isInteger(key) && Math.abs(key) <= 0x7fffffff ? mix(key | 0) : mix(fnv1a(String(key)))
    case "bigint":
    case "boolean":
      return mix(fnv1a(`${typeof key}:${key}`))
    case "undefined":
      return 0
    default:
      return mix(fnv1a(JSON.stringify(key) ?? String(key)))
  }
}

export const partitionOf = (key: unknown, partitionCount: number): number => stableHash(key) % partitionCount
