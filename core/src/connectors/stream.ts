import { Context, Effect, Pull, Queue, Stream } from "effect"
import * as Sink from "../pipeline/Sink.ts"
import * as Source from "../pipeline/Source.ts"

export interface StreamSourceOptions {
  readonly name?: string | undefined
  /**
   * Whether the stream ends (default false). A stream that ends finishes its
   * job either way; say `true` for the planner to allow stages that need the
   * whole input (a global `aggregate`, `sort`).
   */
  readonly bounded?: boolean | undefined
}

/** How long a pull waits for the stream before answering "nothing now", so barriers and ticks carry on. */
const IDLE_WAIT = "20 millis"

/**
 * Runs an Effect `Stream` as a source (one instance: a stream cannot be
 * split). Its chunks are read through a queue of `batchSize` records, so the
 * stream runs at most that far ahead of the job, and are pulled as batches.
 * The stream runs in the instance's scope: cancelling the job interrupts it
 * and runs its finalizers. Its failure fails the job with a `SourceError`
 * whose `cause` is the stream's error.
 *
 * Replayable when given as a function from a position to the stream from
 * there: by default the position is the count of records read so far (the
 * function gets 0 on a fresh start); with `position`, it is
 * `position(record)` of the last record read (the function gets `undefined`
 * on a fresh start), e.g. an offset carried by each record.
 */
export const fromStream: {
  <A, E, R>(stream: Stream.Stream<A, E, R>, options?: StreamSourceOptions): Source.Source<A, R>
  <A, E, R>(stream: (position: number) => Stream.Stream<A, E, R>, options?: StreamSourceOptions): Source.Source<A, R>
  <A, E, R, P>(
    stream: (position: P | undefined) => Stream.Stream<A, E, R>,
    options: StreamSourceOptions & { readonly position: (a: A) => P }
  ): Source.Source<A, R>
} = <A, E, R>(
  stream: Stream.Stream<A, E, R> | ((position: any) => Stream.Stream<A, E, R>),
  options?: StreamSourceOptions & { readonly position?: ((a: A) => unknown) | undefined }
): Source.Source<A, R> =>
  Source.make({
    name: options?.name ?? "stream",
    bounded: options?.bounded ?? false,
    maxParallelism: 1,
    open: ({ batchSize, restoredPosition }) =>
      Effect.gen(function*() {
        const positionOf = options?.position
        const replay = Stream.isStream(stream) ? undefined : stream
        let position: unknown = restoredPosition ?? (positionOf ? undefined : 0)
        const queue = yield* Stream.toQueue(replay ? replay(position) : (stream as Stream.Stream<A, E, R>), { capacity: batchSize })
        const read = (batch: ReadonlyArray<A>) => {
          if (batch.length > 0) position = positionOf ? positionOf(batch[batch.length - 1]!) : (position as number) + batch.length
          return batch
        }
        return {
          position: replay && (() => position),
          pull: Queue.takeBetween(queue, 1, batchSize).pipe(
            Effect.timeoutOrElse({ duration: IDLE_WAIT, orElse: () => Effect.succeed([]) }),
            Effect.map(read),
            Pull.catchDone(() => Effect.succeed(undefined))
          )
        }
      })
  })

/**
 * The queue a `Sinks.stream()` writes into, provided by `Tributary.stream`;
 * `A` is the type of the records, so the stream's element type follows from
 * the pipeline's requirements.
 */
export interface StreamOutput<out A> {
  readonly _A: (_: never) => A
}

export const StreamOutput = Context.Service<StreamOutput<any>, Queue.Enqueue<any, any>>("tributary/StreamOutput")

/** The record type of the `Sinks.stream()` sinks among requirements `R`. */
export type StreamOutputOf<R> = R extends StreamOutput<infer A> ? A : never

/**
 * The sink of a pipeline run with `Tributary.stream`, whose stream emits what
 * it receives, batch by batch: a write waits while the stream's buffer is
 * full, so a slow consumer slows the job down. Its requirement is met by
 * `Tributary.stream` alone.
 */
export const stream = <A>(options?: { readonly name?: string | undefined }): Sink.Sink<A, StreamOutput<A>> =>
  Sink.make({
    name: options?.name ?? "stream",
    // The consumer is in the process that started the job.
    inProcess: true,
    open: () =>
      Effect.map(Effect.service(StreamOutput), (queue): Sink.SinkWriter<A> => ({
        write: (batch) => Effect.asVoid(Queue.offerAll(queue, batch))
      }))
  }) as Sink.Sink<A, any>
