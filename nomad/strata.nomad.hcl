# Strata on Nomad: one job, three groups scaled on their own.
#
#   controlplane  count 2   metadata owner on PostgreSQL; one leads, the other stands by
#   worker        count 2   background jobs (each job runs once per cycle under its advisory lock)
#   dataplane     count N   stateless S3 fronts, registered as service "strata-s3"
#
# Secrets come from the Nomad variable nomad/jobs/strata (readable by this job's tasks through
# their workload identity), see nomad/README.md:
#
#   nomad var put nomad/jobs/strata cluster_secret=$(openssl rand -hex 32) \
#     database_url=postgres://strata:PASSWORD@db.internal:5432/strata \
#     backend_key_id=... backend_secret=... admin_secret=...
#
# The Strata config (template "local/strata.yaml") is the chart's helm/strata/files/strata.yaml
# plus the backends and credentials; `$${VAR}` is HCL for a literal `${VAR}`, which Strata expands
# from the task environment when it starts. tests/e2e/test_deploy_configs.py extracts it and runs
# `strata validate` on it for every role.

variable "datacenters" {
  type    = list(string)
  default = ["dc1"]
}

variable "image" {
  description = "Strata image for every group (the binary at /usr/local/bin/strata)."
  type        = string
  default     = "ghcr.io/strata-project/strata:0.1.0"
}

# Rolling upgrades go control planes first, then workers, then data planes: set these one
# after the other (each `nomad job run` waits for its group to be healthy), then `image`.
variable "controlplane_image" {
  type    = string
  default = ""
}

variable "worker_image" {
  type    = string
  default = ""
}

variable "dataplane_count" {
  type    = number
  default = 3
}

variable "controlplane_count" {
  type    = number
  default = 2
}

variable "worker_count" {
  type    = number
  default = 2
}

variable "region" {
  description = "server.region: the region S3 clients sign for."
  type        = string
  default     = "us-east-1"
}

variable "lease_secs" {
  description = "control_plane.lease_secs: a dead leader is replaced after about this long."
  type        = number
  default     = 5
}

variable "shutdown_grace_secs" {
  description = "server.shutdown_grace_secs; kill_timeout is this plus 5 s."
  type        = number
  default     = 30
}

locals {
  controlplane_image = var.controlplane_image != "" ? var.controlplane_image : var.image
  worker_image       = var.worker_image != "" ? var.worker_image : var.image
  kill_timeout       = "${var.shutdown_grace_secs + 5}s"

  # Secrets from the Nomad variable nomad/jobs/strata, as environment variables of every task.
  # Add a line here for every `$${VAR}` the config below uses.
  secrets_env = <<-EOT
    {{- with nomadVar "nomad/jobs/strata" }}
    STRATA_CLUSTER_SECRET={{ .cluster_secret }}
    STRATA_DATABASE_URL={{ .database_url }}
    BACKEND_KEY_ID={{ .backend_key_id }}
    BACKEND_SECRET={{ .backend_secret }}
    STRATA_ADMIN_SECRET={{ .admin_secret }}
    {{- end }}
    EOT

  # Data planes list every registered control plane (the same host:port each one advertises)
  # and follow the leader. The task restarts when the set changes.
  controlplane_env = <<-EOT
    STRATA_CONTROL_PLANE_URL={{ range $i, $s := nomadService "strata-controlplane" }}{{ if $i }},{{ end }}http://{{ .Address }}:{{ .Port }}{{ end }}
    EOT

  # The Strata config of every group: helm/strata/files/strata.yaml plus backends and
  # credentials. `$${VAR}` is a literal `${VAR}` that Strata expands from the task environment.
  strata_config = <<-EOT
    data_dir: $${STRATA_DATA_DIR:-/var/lib/strata}

    server:
      listen: $${STRATA_S3_LISTEN:-0.0.0.0:9000}
      region: $${STRATA_REGION:-us-east-1}
      domain: $${STRATA_DOMAIN:-}
      shutdown_grace_secs: $${STRATA_SHUTDOWN_GRACE_SECS:-30}

    # Data planes list every control plane (comma-separated) and follow the leader; each control
    # plane advertises its own URL in the leader lease.
    control_plane:
      listen: $${STRATA_GRPC_LISTEN:-0.0.0.0:9100}
      url: $${STRATA_CONTROL_PLANE_URL:-}
      advertise_url: $${STRATA_ADVERTISE_URL:-}
      lease_secs: $${STRATA_LEASE_SECS:-5}

    cluster:
      secret: $${STRATA_CLUSTER_SECRET}

    database:
      url: $${STRATA_DATABASE_URL:-}
      host: $${STRATA_DATABASE_HOST:-}
      port: $${STRATA_DATABASE_PORT:-}
      user: $${STRATA_DATABASE_USER:-}
      password: $${STRATA_DATABASE_PASSWORD:-}
      dbname: $${STRATA_DATABASE_NAME:-}
      max_connections: $${STRATA_DATABASE_MAX_CONNECTIONS:-}

    # The worker's /health, /ready, /metrics and /status/jobs (other roles ignore it).
    worker:
      listen: $${STRATA_WORKER_LISTEN:-0.0.0.0:9300}

    logging:
      format: $${STRATA_LOG_FORMAT:-json}
      level: $${STRATA_LOG_LEVEL:-info}

    # Edit to your backends; every placeholder must have a line in local.secrets_env.
    backends:
      - type: s3
        id: backend1
        endpoint: https://s3.us-west-004.backblazeb2.com
        region: us-west-004
        bucket: my-strata-bucket
        prefix: strata/
        access_key_id: $${BACKEND_KEY_ID}
        secret_access_key: $${BACKEND_SECRET}

    # Copies per object (at most the number of backends); write_quorum copies before a PUT is
    # acknowledged.
    replication:
      factor: 1
      write_quorum: 1

    credentials:
      - access_key_id: ADMINKEY01
        secret_access_key: $${STRATA_ADMIN_SECRET}
        unrestricted: true
    EOT
}

job "strata" {
  datacenters = var.datacenters
  type        = "service"

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "3m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "controlplane" {
    count = var.controlplane_count

    # Losing a host loses at most one of the leader and its standby.
    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    network {
      port "grpc" {
        to = 9100
      }
    }

    service {
      name     = "strata-controlplane"
      provider = "nomad"
      port     = "grpc"

      # With Consul as the provider, prefer a `type = "grpc"` check (grpc.health.v1, no token).
      check {
        type     = "tcp"
        interval = "5s"
        timeout  = "2s"
      }
    }

    ephemeral_disk {
      size = 1024
    }

    task "strata" {
      driver       = "docker"
      kill_signal  = "SIGTERM"
      kill_timeout = local.kill_timeout

      config {
        image = local.controlplane_image
        args  = ["serve", "--role", "controlplane", "--config", "/local/strata.yaml"]
        ports = ["grpc"]
      }

      env {
        STRATA_REGION              = var.region
        STRATA_SHUTDOWN_GRACE_SECS = var.shutdown_grace_secs
        STRATA_DATA_DIR            = "${NOMAD_ALLOC_DIR}/data"
        # control_plane.advertise_url: the host address and port Nomad maps to the container's
        # 9100, as the data planes list it.
        STRATA_ADVERTISE_URL = "http://${NOMAD_ADDR_grpc}"
        STRATA_LEASE_SECS    = var.lease_secs
      }

      template {
        destination = "secrets/strata.env"
        env         = true
        change_mode = "restart"
        data        = local.secrets_env
      }

      template {
        destination = "local/strata.yaml"
        change_mode = "restart"
        data        = local.strata_config
      }

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }

  group "worker" {
    count = var.worker_count

    network {
      port "status" {
        to = 9300
      }
    }

    service {
      name     = "strata-worker"
      provider = "nomad"
      port     = "status"

      check {
        name     = "ready"
        type     = "http"
        path     = "/ready"
        interval = "10s"
        timeout  = "2s"
      }

      check {
        name     = "alive"
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"

        check_restart {
          limit = 3
          grace = "30s"
        }
      }
    }

    ephemeral_disk {
      size = 2048
    }

    task "strata" {
      driver       = "docker"
      kill_signal  = "SIGTERM"
      kill_timeout = local.kill_timeout

      config {
        image = local.worker_image
        args  = ["serve", "--role", "worker", "--config", "/local/strata.yaml"]
        ports = ["status"]
      }

      env {
        STRATA_REGION              = var.region
        STRATA_SHUTDOWN_GRACE_SECS = var.shutdown_grace_secs
        STRATA_DATA_DIR            = "${NOMAD_ALLOC_DIR}/data"
      }

      template {
        destination = "secrets/strata.env"
        env         = true
        change_mode = "restart"
        data        = local.secrets_env
      }

      template {
        destination = "local/strata.yaml"
        change_mode = "restart"
        data        = local.strata_config
      }

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }

  group "dataplane" {
    count = var.dataplane_count

    network {
      port "s3" {
        to = 9000
      }
    }

    service {
      name     = "strata-s3"
      provider = "nomad"
      port     = "s3"

      check {
        name     = "ready"
        type     = "http"
        path     = "/ready"
        interval = "5s"
        timeout  = "2s"
      }

      check {
        name     = "alive"
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"

        check_restart {
          limit = 3
          grace = "30s"
        }
      }
    }

    ephemeral_disk {
      size = 10240
    }

    task "strata" {
      driver       = "docker"
      kill_signal  = "SIGTERM"
      kill_timeout = local.kill_timeout
      # Deregistered from strata-s3 (and so from the load balancer) before SIGTERM.
      shutdown_delay = "5s"

      config {
        image = var.image
        args  = ["serve", "--role", "dataplane", "--config", "/local/strata.yaml"]
        ports = ["s3"]
      }

      env {
        STRATA_REGION              = var.region
        STRATA_SHUTDOWN_GRACE_SECS = var.shutdown_grace_secs
        STRATA_DATA_DIR            = "${NOMAD_ALLOC_DIR}/data"
      }

      template {
        destination = "secrets/strata.env"
        env         = true
        change_mode = "restart"
        splay       = "30s"
        data        = join("", [local.secrets_env, local.controlplane_env])
      }

      template {
        destination = "local/strata.yaml"
        change_mode = "restart"
        data        = local.strata_config
      }

      resources {
        cpu    = 1000
        memory = 1024
      }
    }
  }
}
