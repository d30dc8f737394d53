//! End-to-end tests: the real `shuyu` binary, started as a process, driven
//! over HTTP (and, in `browser`, through headless Chromium) as each role would.

#![allow(missing_docs)]

mod anonymize;
mod api;
mod architecture;
mod audit;
mod boundary;
mod browser;
mod catalogs;
mod cli;
mod datasets;
mod doors;
mod gate;
mod harness;
mod lifecycle;
mod logs;
mod matrix;
mod years;
