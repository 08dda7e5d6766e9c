//! Backend health as the data planes report it (`migrations/0012_backend_health.sql`),
//! replication counted on healthy backends only, and commits of writes made
//! on several backends at once (quorum writes).

use strata_core::{CleanupItem, CpResult, ObjectRecord};

use super::objects::{insert_object, redeem_intent, remove_object};
use super::rows::require_bucket;
use super::{SqliteStore, db};

impl SqliteStore {
    pub(super) async fn commit_replicated_impl(
        &self,
        intent_ids: &[String],
        record: &ObjectRecord,
    ) -> CpResult<Vec<CleanupItem>> {
        let mut tx = self.write_tx().await?;
        require_bucket(&mut tx, &record.bucket).await?;
        for id in intent_ids {
            redeem_intent(&mut tx, id).await?;
        }
        let keep: Vec<_> = record
            .segments
            .iter()
            .chain(record.copies.iter().flatten())
            .cloned()
            .collect();
        let items = remove_object(&mut tx, &record.bucket, &record.key, &keep).await?;
        insert_object(&mut tx, record).await?;
        tx.commit().await.map_err(db)?;
        Ok(items)
    }
}
