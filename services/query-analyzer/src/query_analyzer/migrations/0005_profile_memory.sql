-- Memory of profiled requests (ProfileRecorded's optional memory_peak_bytes and
-- memory_net_bytes, sent when the SDK's profile_memory is on), summed per route: only the
-- profiles that carry it count in memory_profiles, the denominator of the API's means.
ALTER TABLE query_analyzer.route_profiles
    ADD COLUMN IF NOT EXISTS memory_profiles bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS memory_peak_total_bytes double precision NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS memory_peak_max_bytes double precision NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS memory_net_total_bytes double precision NOT NULL DEFAULT 0;
