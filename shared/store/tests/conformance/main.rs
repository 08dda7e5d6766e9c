//! Conformance suite for [`MetaStore`] implementations. The cases in the
//! submodules take `&dyn MetaStore`, so another store can reuse them by
//! including these modules and invoking `conformance!` with its own factory.

mod backend_state;
mod blobs;
mod buckets;
mod copies;
mod delta;
mod health;
mod job_schedule;
mod jobs;
mod lease;
mod list;
mod list_model;
mod monthly;
mod multipart;
mod objects;
mod pg_cluster;
mod reconcile;
mod reserve;
mod rewrite;
mod schema;
mod sqlite;
mod support;
mod usage;

use strata_store::SqliteStore;

/// Expands to one `#[tokio::test]` per case, each on a fresh store from
/// `$make`, an async fn returning `Option<store>` (`None`: skip the case).
macro_rules! conformance {
    ($make:path; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let Some(store) = $make().await else { return };
                crate::$module::$case(&store as &dyn strata_store::MetaStore).await;
            }
        )*
    };
}

async fn memory_store() -> Option<SqliteStore> {
    Some(
        SqliteStore::connect("sqlite::memory:")
            .await
            .expect("open in-memory store"),
    )
}

/// Every conformance case, on the stores of `$make`.
macro_rules! all_cases {
    ($make:path) => {
        conformance! {
            $make;
            buckets::credentials_round_trip,
            buckets::bucket_lifecycle,
            buckets::delete_bucket_refuses_objects_and_uploads,
            objects::commit_and_get_round_trip,
            objects::overwrite_queues_old_segments,
            objects::cleanup_queue_ack_and_limit,
            objects::commit_without_intent_and_missing_bucket,
            objects::get_and_delete_errors,
            objects::odd_keys_round_trip,
            objects::commit_checks_its_condition,
            objects::concurrent_create_only_commits_one,
            list::prefix_is_literal_and_case_sensitive,
            list::delimiter_groups_common_prefixes,
            list::max_keys_zero_and_missing_bucket,
            list_model::paging_matches_one_page_and_model,
            list::after_a_common_prefix_skips_its_keys,
            list::large_common_prefix_spans_batches,
            multipart::complete_happy_path,
            multipart::complete_checks_its_condition,
            multipart::complete_rejects_bad_part_lists,
            multipart::part_replacement_and_list_parts,
            multipart::abort_queues_parts,
            multipart::list_uploads_ordering_and_markers,
            multipart::missing_upload_and_bucket_errors,
            usage::usage_overwrite_moves_bytes_to_orphan,
            usage::usage_intents_reserve_until_commit_or_abort,
            usage::usage_follows_multipart_parts,
            usage::usage_is_per_backend,
            jobs::cleanup_claims_are_exclusive_and_expire,
            jobs::cleanup_failures_back_off_then_dead_letter,
            jobs::cleanup_ack_removes_claimed_rows,
            jobs::stale_intents_returns_only_old_ones,
            job_schedule::job_schedule_round_trip_and_control,
            job_schedule::job_lock_is_granted_and_released,
            copies::copies_are_added_listed_and_removed_with_the_object,
            copies::a_copy_of_a_replaced_object_is_queued_not_attached,
            copies::promotion_respects_newer_writes,
            health::backend_health_tracks_how_long_a_breaker_stays_open,
            health::copies_on_unhealthy_backends_do_not_count,
            health::commit_replicated_redeems_every_intent_or_none,
            reserve::reserve_refuses_beyond_the_quota,
            monthly::monthly_usage_adds_up_per_backend,
            monthly::monthly_usage_starts_from_zero_each_month,
            blobs::blob_upserts_merge_and_marks_apply,
            blobs::blob_key_counts_and_blobs_not_under,
            blobs::rewrap_is_compare_and_set,
            blobs::prune_keeps_referenced_blobs,
            rewrite::objects_after_pages_across_buckets,
            rewrite::replace_copy_moves_bytes_exactly,
            rewrite::drop_copy_never_removes_the_last,
            rewrite::replace_copy_deletes_its_intent,
            rewrite::corrupt_blobs_owners_and_counts,
            blobs::job_progress_round_trip,
            delta::delta_refs_current_and_retired,
            delta::blob_codec_facts_merge,
            delta::delta_report_and_reference_liveness,
            delta::refs_to_compact_and_mark,
            delta::deltas_to_compact_and_mark,
            backend_state::backend_state_is_compare_and_set,
            backend_state::objects_on_a_backend_and_holdings,
            backend_state::over_replicated_lists_objects_above_the_factor,
            backend_state::forget_backend_refuses_referenced_then_drops_rows,
            reconcile::known_blobs_merge_every_source_in_byte_order,
            reconcile::orphans_are_queued_only_when_nothing_names_them,
            lease::lease_acquire_renew_and_refuse,
            lease::lease_takeover_after_expiry_bumps_term,
            lease::lease_fence_rejects_deposed_commits,
        }
    };
}

all_cases!(memory_store);

// After the macros: the module uses them.
mod postgres;
