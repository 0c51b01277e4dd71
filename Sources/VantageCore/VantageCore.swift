// VantageCore: what several modules share, with no dependency but Foundation and SQLite, so that every other
// module can depend on it and arrows point one way (Core <- Media/Inference/Protocol/Analytics/App/Outputs <-
// Runtime <- Agent; Core <- API <- Server/Client).
//
// - `JSONValue` and `APIJSON`: any JSON value and the API's encoder, decoder and time format.
// - `ModelSpec` (with `ModelInputSpec`, `DecoderSpec`) and Panorama's `ModelDescriptor`: what inference needs of a
//   model package, without the manifest module.
// - `onDedicatedThread` and `BlockingQueue`: blocking work off the cooperative pool (Blocking.swift says which when).
// - `OutputsConfiguration` and its parser: the outputs document (sinks, rules, analytics nodes, local events), read
//   and checked by the control plane without linking any sink; with the geometry its analytics nodes hold (`Point`,
//   `Rect`, `Zone`, `CountingLine`, `TrackerConfiguration`).
// - `SQLiteConnection`: one SQLite connection with prepared statements, for the sinks' outbox and the control plane.
// - `Duration.seconds`, `Duration.milliseconds`, `Date.iso8601Text`: durations and times, one definition each.
