-- Request profiles from the SDK's sampler (ProfileRecorded on opsmesh.profiles), summed
-- per route and per function on the route; the API ranks them (GET /api/v1/profiles).
CREATE TABLE IF NOT EXISTS query_analyzer.route_profiles (
    service text NOT NULL,
    route text NOT NULL,
    profiles bigint NOT NULL,
    slow_profiles bigint NOT NULL,
    samples bigint NOT NULL,
    total_ms double precision NOT NULL,
    max_ms double precision NOT NULL,
    slowest_trace_id text,
    last_seen timestamptz NOT NULL,
    PRIMARY KEY (service, route)
);
CREATE INDEX IF NOT EXISTS route_profiles_last_seen ON query_analyzer.route_profiles (last_seen);

CREATE TABLE IF NOT EXISTS query_analyzer.profile_functions (
    service text NOT NULL,
    route text NOT NULL,
    function text NOT NULL,
    file text NOT NULL,
    line integer NOT NULL,
    profiles bigint NOT NULL,
    self_samples bigint NOT NULL,
    total_samples bigint NOT NULL,
    last_seen timestamptz NOT NULL,
    PRIMARY KEY (service, route, function, file, line)
);
CREATE INDEX IF NOT EXISTS profile_functions_last_seen
    ON query_analyzer.profile_functions (last_seen);
