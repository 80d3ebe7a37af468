/**
 * Per-key state. Primitive keys index a Map directly; object keys (composite
 * keys such as `[a, b]`) by their JSON form, because JavaScript Maps compare
 * objects by identity and two equal keys built by different records must meet.
 */
export class KeyedMap<V> {
  private readonly byValue = new Map<unknown, V>()
  private readonly byJson = new Map<string, { readonly key: unknown; value: V }>()

  get size(): number {
    return this.byValue.size + this.byJson.size
  }

  get(key: unknown): V | undefined {
    return typeof key === "object" && key !== null ? this.byJson.get(JSON.stringify(key))?.value : this.byValue.get(key)
  }

  set(key: unknown, value: V): void {
    if (typeof key === "object" && key !== null) {
      const id = JSON.stringify(key)
      const entry = this.byJson.get(id)
      if (entry) entry.value = value
      else this.byJson.set(id, { key, value })
    } else {
      this.byValue.set(key, value)
    }
  }

  has(key: unknown): boolean {
    return typeof key === "object" && key !== null ? this.byJson.has(JSON.stringify(key)) : this.byValue.has(key)
  }

  delete(key: unknown): void {
    if (typeof key === "object" && key !== null) this.byJson.delete(JSON.stringify(key))
    else this.byValue.delete(key)
  }

  /** Visits every entry; faster than `entries()` on hot paths (no generator). */
  forEach(f: (value: V, key: unknown) => void): void {
    this.byValue.forEach(f)
    if (this.byJson.size > 0) this.byJson.forEach((e) => f(e.value, e.key))
  }

  *entries(): IterableIterator<[unknown, V]> {
    yield* this.byValue
    for (const e of this.byJson.values()) yield [e.key, e.value]
  }

  clear(): void {
    this.byValue.clear()
    this.byJson.clear()
  }
}
