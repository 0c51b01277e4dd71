/// The database schema, as numbered migrations applied in order at start-up, each in its own transaction and
/// recorded in `schema_migrations`. The same statements run on SQLite and PostgreSQL: ids are text made by the
/// server, times are milliseconds since 1970 (BIGINT), JSON documents are TEXT. Only the audit log's
/// append-only trigger differs by engine. Never edit a released migration; add the next one.
enum Schema {
    struct Migration: Sendable {
        let version: Int
        let name: String
        let statements: @Sendable (DatabaseEngineKind) -> [String]
    }

    /// The migration that creates `artifact_signatures`: the server start applying it signs older artifacts.
    static let artifactSignaturesVersion = 8

    static let migrations: [Migration] = [
        Migration(version: 1, name: "initial schema") { kind in
            [
                """
                CREATE TABLE users (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
                    role TEXT NOT NULL, created_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE api_tokens (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
                    created_at BIGINT NOT NULL, last_used_at BIGINT)
                """,
                """
                CREATE TABLE sessions (
                    id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL UNIQUE,
                    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    csrf_token TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE audit_log (
                    id TEXT PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
                    target TEXT NOT NULL, detail TEXT)
                """,
                "CREATE INDEX audit_log_at ON audit_log (at, id)",
                """
                CREATE TABLE devices (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL,
                    provisioning_status TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, last_heartbeat_at BIGINT,
                    software_version TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE cameras (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL, url TEXT NOT NULL,
                    credentials TEXT, device_id TEXT REFERENCES devices(id) ON DELETE SET NULL,
                    snapshot_digest TEXT, snapshot_at BIGINT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE models (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL,
                    created_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE model_versions (
                    model_id TEXT NOT NULL REFERENCES models(id) ON DELETE CASCADE, version INTEGER NOT NULL,
                    digest TEXT NOT NULL, size BIGINT NOT NULL, filename TEXT NOT NULL, descriptor TEXT,
                    created_at BIGINT NOT NULL, PRIMARY KEY (model_id, version))
                """,
                """
                CREATE TABLE packages (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL,
                    created_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE package_versions (
                    package_id TEXT NOT NULL REFERENCES packages(id) ON DELETE CASCADE, version TEXT NOT NULL,
                    status TEXT NOT NULL, digest TEXT NOT NULL, size BIGINT NOT NULL, application TEXT NOT NULL,
                    inputs TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (package_id, version))
                """,
                """
                CREATE TABLE instances (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL,
                    package_id TEXT NOT NULL REFERENCES packages(id), package_version TEXT NOT NULL,
                    device_id TEXT NOT NULL REFERENCES devices(id), cameras TEXT NOT NULL, parameters TEXT NOT NULL,
                    desired_state TEXT NOT NULL, status TEXT NOT NULL, health_status TEXT NOT NULL,
                    status_description TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
                """,
                "CREATE INDEX instances_device ON instances (device_id)",
                """
                CREATE TABLE deployments (
                    id TEXT PRIMARY KEY, instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
                    package_version TEXT NOT NULL, desired_state TEXT NOT NULL, status TEXT NOT NULL,
                    message TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
                """,
                "CREATE INDEX deployments_instance ON deployments (instance_id, created_at)",
                """
                CREATE TABLE events (
                    id TEXT PRIMARY KEY, device_id TEXT NOT NULL, camera_id TEXT, instance_id TEXT,
                    type TEXT NOT NULL, at BIGINT NOT NULL, received_at BIGINT NOT NULL, data TEXT NOT NULL,
                    snapshot_digest TEXT)
                """,
                // Every event query is "newest first, optionally filtered by one column": keyset pagination on
                // (at, id) after an equality on the filter column.
                "CREATE INDEX events_at ON events (at, id)",
                "CREATE INDEX events_device ON events (device_id, at, id)",
                "CREATE INDEX events_camera ON events (camera_id, at, id)",
                "CREATE INDEX events_instance ON events (instance_id, at, id)",
                "CREATE INDEX events_type ON events (type, at, id)",
                """
                CREATE TABLE device_metrics (
                    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE, name TEXT NOT NULL,
                    at BIGINT NOT NULL, value DOUBLE PRECISION NOT NULL)
                """,
                "CREATE INDEX device_metrics_series ON device_metrics (device_id, name, at)",
            ] + appendOnly("audit_log", kind)
        },
        Migration(version: 2, name: "device event ids") { _ in
            [
                // A device's own id for an event makes a resent batch idempotent. NULLs never collide, so events
                // sent without one are all kept.
                "ALTER TABLE events ADD COLUMN device_event_id TEXT",
                "CREATE UNIQUE INDEX events_device_event ON events (device_id, device_event_id)",
            ]
        },
        Migration(version: 3, name: "device certificates, instance models, device logs") { kind in
            [
                // A provisioning token works once, until it expires: enrolling replaces its hash with one no
                // secret has and clears the expiry. Tokens made before this migration (NULL) no longer work.
                "ALTER TABLE devices ADD COLUMN token_expires_at BIGINT",
                // The server's CA, made at the first start; the key is sealed with the server's secret key.
                """
                CREATE TABLE certificate_authority (
                    id INTEGER PRIMARY KEY, certificate TEXT NOT NULL, sealed_key TEXT NOT NULL,
                    created_at BIGINT NOT NULL)
                """,
                // Every certificate issued to a device; the newest unrevoked, unexpired one is the device's.
                """
                CREATE TABLE device_certificates (
                    serial TEXT PRIMARY KEY, device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
                    fingerprint TEXT NOT NULL, not_after BIGINT NOT NULL, created_at BIGINT NOT NULL,
                    revoked_at BIGINT)
                """,
                "CREATE INDEX device_certificates_device ON device_certificates (device_id)",
                // Model node → {modelId, version}: model files from the server's models, bound per instance.
                "ALTER TABLE instances ADD COLUMN models TEXT NOT NULL DEFAULT '{}'",
                // Log lines devices ship (the agent's own: instance_id NULL), the newest few thousand per device.
                """
                CREATE TABLE device_logs (
                    id \(kind == .postgres ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT"),
                    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE, instance_id TEXT,
                    at BIGINT NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL)
                """,
                "CREATE INDEX device_logs_source ON device_logs (device_id, instance_id, id)",
                // Heartbeats come every few seconds; the series keeps one point per metric per minute.
                "ALTER TABLE devices ADD COLUMN metrics_at BIGINT",
                "ALTER TABLE devices ADD COLUMN last_metrics TEXT",
                "CREATE INDEX device_metrics_age ON device_metrics (device_id, at)",
            ]
        },
        Migration(version: 4, name: "instance outputs") { _ in
            [
                // The instance's outputs document (sinks, rules, analytics) as JSON text; NULL when it has none.
                // Secrets in it are `${NAME}` references only: the server refuses literal ones.
                "ALTER TABLE instances ADD COLUMN outputs TEXT"
            ]
        },
        Migration(version: 5, name: "instance AWS credentials") { _ in
            [
                // The instance's AWS credentials as JSON sealed with the server's secret key (as camera credentials
                // are); NULL when it has none. Only its device's desired state opens them.
                "ALTER TABLE instances ADD COLUMN aws_credentials TEXT",
                // What answers show of them (masked access key id, region), so showing an instance never opens the
                // seal.
                "ALTER TABLE instances ADD COLUMN aws_credentials_summary TEXT",
            ]
        },
        Migration(version: 6, name: "software releases and rollouts") { _ in
            [
                // A release tarball (make package's .tar.gz), kept in the artifact store by digest.
                """
                CREATE TABLE releases (
                    version TEXT PRIMARY KEY, digest TEXT NOT NULL, size BIGINT NOT NULL, created_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE rollouts (
                    id TEXT PRIMARY KEY, release_version TEXT NOT NULL REFERENCES releases(version),
                    state TEXT NOT NULL, reason TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
                """,
                // Position 0 is the canary; the others get the release once it is healthy.
                """
                CREATE TABLE rollout_devices (
                    rollout_id TEXT NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
                    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE, position INTEGER NOT NULL,
                    state TEXT NOT NULL, reason TEXT, updated_at BIGINT NOT NULL, PRIMARY KEY (rollout_id, device_id))
                """,
                "CREATE INDEX rollout_devices_device ON rollout_devices (device_id)",
            ]
        },
        Migration(version: 7, name: "device agent sessions (cloned certificates)") { _ in
            [
                // The agent processes recently heard from for the device (JSON, ``AgentSessions``): two taking
                // turns mean its certificate is used from two places at once.
                "ALTER TABLE devices ADD COLUMN agent_sessions TEXT",
                // When that was seen first (NULL: never, or since the device enrolled again), and from where.
                "ALTER TABLE devices ADD COLUMN clone_detected_at BIGINT",
                "ALTER TABLE devices ADD COLUMN clone_detail TEXT",
            ]
        },
        Migration(version: 8, name: "artifact signatures") { _ in
            [
                // The control plane's Ed25519 signature of each artifact a device downloads (ArtifactSignature):
                // made at upload; the artifacts uploaded before this migration are signed once, by the server
                // start that applies it (ControlPlane.open).
                """
                CREATE TABLE artifact_signatures (
                    digest TEXT NOT NULL, kind TEXT NOT NULL, signature TEXT NOT NULL, created_at BIGINT NOT NULL,
                    PRIMARY KEY (digest, kind))
                """
            ]
        },
        Migration(version: 9, name: "event sequences and device times") { _ in
            [
                // The instance's own order of its events (the agent's outbox sequence), which a device clock that
                // jumps cannot disturb; and the device's time of an event whose time the server replaced with the
                // time received (the device's clock was ahead).
                "ALTER TABLE events ADD COLUMN sequence BIGINT",
                "ALTER TABLE events ADD COLUMN device_time BIGINT",
                "CREATE INDEX events_instance_sequence ON events (instance_id, sequence, id)",
            ]
        },
        Migration(version: 10, name: "event clips") { _ in
            [
                // The MP4 clip a device uploaded for an event (an artifact digest, like snapshot_digest).
                "ALTER TABLE events ADD COLUMN clip_digest TEXT"
            ]
        },
        Migration(version: 11, name: "camera sub-streams") { _ in
            [
                // The camera's low-resolution sub-stream (decoded for detection, the main stream kept for clips),
                // stored as `url` is: without credentials, which are the camera's (`credentials`). NULL: none.
                "ALTER TABLE cameras ADD COLUMN detect_url TEXT"
            ]
        },
    ]

    /// Triggers that refuse UPDATE and DELETE on `table`.
    static func appendOnly(_ table: String, _ kind: DatabaseEngineKind) -> [String] {
        switch kind {
        case .sqlite:
            return ["UPDATE", "DELETE"].map { verb in
                """
                CREATE TRIGGER \(table)_no_\(verb.lowercased()) BEFORE \(verb) ON \(table)
                BEGIN SELECT RAISE(ABORT, '\(table) is append-only'); END
                """
            }
        case .postgres:
            return [
                """
                CREATE FUNCTION \(table)_append_only() RETURNS trigger AS $$
                BEGIN RAISE EXCEPTION '\(table) is append-only'; END $$ LANGUAGE plpgsql
                """,
                """
                CREATE TRIGGER \(table)_append_only BEFORE UPDATE OR DELETE ON \(table)
                FOR EACH ROW EXECUTE FUNCTION \(table)_append_only()
                """,
                // TRUNCATE skips row triggers.
                """
                CREATE TRIGGER \(table)_no_truncate BEFORE TRUNCATE ON \(table)
                FOR EACH STATEMENT EXECUTE FUNCTION \(table)_append_only()
                """,
            ]
        }
    }

    /// Applies the migrations the database lacks. On PostgreSQL an advisory lock makes replicas that start
    /// together take turns; each migration commits with its version row, so a crash leaves no half-applied step.
    static func migrate(_ database: any Database) async throws -> [Int] {
        var applied: [Int] = []
        for migration in migrations {
            let done = try await database.transaction { db -> Bool in
                if database.kind == .postgres {
                    try await db.query("SELECT pg_advisory_xact_lock(7461626)")
                }
                try await db.query(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
                )
                let rows = try await db.query(
                    "SELECT version FROM schema_migrations WHERE version = \(migration.version)")
                guard rows.isEmpty else { return false }
                for statement in migration.statements(database.kind) {
                    try await db.query(SQL(statement))
                }
                try await db.query(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (\(migration.version), \(migration.name), \(Millis.now()))"
                )
                return true
            }
            if done { applied.append(migration.version) }
        }
        return applied
    }
}
