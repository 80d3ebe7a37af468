/**
 * A record with its event time. After `withTimestamps` records travel wrapped
 * like this, so stateless stages keep the time of the record they transform;
 * sinks and stages that do not use event time receive the bare record.
 */
export interface Event<out A> {
  readonly t: number
  readonly v: A
}

export const event = <A>(t: number, v: A): Event<A> => ({ t, v })
