//! Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket and
//! GetBucketLocation, plus the S3 bucket-name rules.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use strata_core::{BucketName, Scope};

use super::StrataS3;
use super::meta::timestamp;
use crate::auth::Caller;
use crate::errors::from_cp;

impl StrataS3 {
    pub(super) async fn op_list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let scope = req
            .extensions
            .get::<Caller>()
            .map_or(Scope::Buckets(Vec::new()), |c| c.0.clone());
        let buckets = self.cp.list_buckets().await.map_err(from_cp)?;
        let list = buckets
            .into_iter()
            .filter(|b| scope.allows(&b.name))
            .map(|b| Bucket {
                name: Some(b.name),
                creation_date: Some(timestamp(b.created_unix_ms)),
                bucket_region: Some(self.region.clone()),
            })
            .collect();
        let owner = req.credentials.as_ref().map(|c| Owner {
            id: Some(c.access_key.clone()),
            display_name: Some(c.access_key.clone()),
        });
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(list),
            owner,
            ..Default::default()
        }))
    }

    pub(super) async fn op_create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let name = valid_bucket(&req.input.bucket)?;
        if let Some(loc) = req
            .input
            .create_bucket_configuration
            .as_ref()
            .and_then(|c| c.location_constraint.as_ref())
            && loc.as_str() != self.region
            && !(loc.as_str().is_empty() && self.region == "us-east-1")
        {
            return Err(s3_error!(
                InvalidLocationConstraint,
                "The specified location-constraint is not valid for this endpoint."
            ));
        }
        let owner = req
            .credentials
            .as_ref()
            .map(|c| c.access_key.clone())
            .unwrap_or_default();
        self.cp.create_bucket(name.as_str(), &owner).await.map_err(from_cp)?;
        let output = CreateBucketOutput {
            location: Some(format!("/{name}")),
        };
        Ok(S3Response::new(output))
    }

    pub(super) async fn op_head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.cp.head_bucket(&req.input.bucket).await.map_err(from_cp)?;
        let output = HeadBucketOutput {
            bucket_region: Some(self.region.clone()),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    pub(super) async fn op_delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.cp.delete_bucket(&req.input.bucket).await.map_err(from_cp)?;
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }

    pub(super) async fn op_get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.cp.head_bucket(&req.input.bucket).await.map_err(from_cp)?;
        // S3 reports us-east-1 as an empty location constraint.
        let loc = (self.region != "us-east-1").then(|| BucketLocationConstraint::from(self.region.clone()));
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: loc,
        }))
    }
}

pub(super) fn valid_bucket(name: &str) -> S3Result<BucketName> {
    BucketName::new(name).map_err(|_| s3_error!(InvalidBucketName))
}
