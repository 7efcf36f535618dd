//! netbox-toolkit runs vetted CLI commands on network devices, with NetBox
//! as the source of truth for inventory and as the audit log.
//!
//! Layers, from the wire inwards: [`api`] (HTTP and OpenAPI), [`service`]
//! (policy: catalogue, rate limits, retries, audit), [`connector`] (platform
//! drivers over SSH) and [`netbox`] (the REST client). [`config`],
//! [`telemetry`] and [`startup`] set the process up.

#![warn(missing_docs)]

pub mod api;
pub mod config;
pub mod connector;
pub mod netbox;
pub mod service;
pub mod simulator;
pub mod startup;
pub mod telemetry;
