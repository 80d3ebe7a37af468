/**
 * What connector authors test with (`@tributary/core/testing`): the
 * conformance suite every source and sink passes against its real server.
 *
 * @module @tributary/core/testing
 */
export * as Conformance from "./testing/Conformance.ts"
