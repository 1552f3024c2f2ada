//! `GET /metrics`: Prometheus's text format (the `metrics` permission; without `[auth]`,
//! loopback only). Everything is read at the scrape from what the paths and sessions already
//! count, so that nothing is added to the media's path; counters of viewers include the
//! sessions that ended (`Sessions::totals_by_path`). Labels are bounded: a path's name, its
//! layer, and its state.

use super::access;
use super::AppState;
use crate::auth::{Action, Protocol};
use crate::egress::webrtc::session::experience::PathExperience;
use crate::histogram::Histogram;
use crate::egress::webrtc::session::viewer_totals::ViewerTotals;
use crate::stream::{layer_name, Stream};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

/// Metrics of the paths and their viewers, made at each scrape.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics_scrape", tag = "server",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String)))]
pub async fn scrape(State(app): State<AppState>, connect_info: ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    if let Err(response) = access::authorize(&app, access::client_ip(&connect_info), &headers, Protocol::Http, Action::Metrics, None).await {
        return response;
    }
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape { app }));
    let mut text = String::new();
    if let Err(error) = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot write the metrics: {error}\n")).into_response();
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

struct Scrape {
    app: AppState,
}

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scrape")
    }
}

/// One metric: its name (without `lookout_`), help, type, and a value per label set.
struct Series<'a> {
    name: &'a str,
    help: &'a str,
    kind: MetricType,
    values: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Series<'_> {
    fn encode(self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let name = format!("lookout_{}", self.name);
        let mut metric = encoder.encode_descriptor(&name, self.help, None, self.kind)?;
        for (labels, value) in &self.values {
            let mut family = metric.encode_family(labels)?;
            match self.kind {
                MetricType::Counter => family.encode_counter::<NoLabelSet, _, u64>(&(*value as u64), None)?,
                _ => family.encode_gauge(value)?,
            }
        }
        Ok(())
    }
}

/// `path` and `layer` labels of each stream of each path.
fn streams(app: &AppState) -> Vec<(Vec<(&'static str, String)>, std::sync::Arc<Stream>)> {
    let mut streams = Vec::new();
    for path in app.registry.list() {
        for (index, layer) in path.layers().into_iter().enumerate() {
            streams.push((vec![("path", path.name().to_owned()), ("layer", layer_name(index))], layer));
        }
    }
    streams
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let app = &self.app;
        let now = Instant::now();
        let streams = streams(app);
        let per_stream = |name, help, kind, value: &dyn Fn(&Stream) -> Option<f64>| Series {
            name,
            help,
            kind,
            values: streams.iter().filter_map(|(labels, stream)| value(stream).map(|v| (labels.clone(), v))).collect(),
        };
        let stats: HashMap<String, _> = streams.iter().map(|(_, stream)| (stream.name().to_owned(), stream.stats())).collect();
        let stat = |stream: &Stream| stats.get(stream.name()).cloned();
        let mut series = vec![
            Series {
                name: "path_state",
                help: "The path's state, 1 for the one it is in: idle, connecting, live, retrying",
                kind: MetricType::Gauge,
                values: streams.iter().map(|(labels, stream)| ([labels.clone(), vec![("state", stream.state().name().to_owned())]].concat(), 1.0)).collect(),
            },
            per_stream("path_frames", "Frames received from the source", MetricType::Counter, &|s| stat(s).map(|st| st.frames as f64)),
            per_stream("path_keyframes", "Keyframes received from the source", MetricType::Counter, &|s| stat(s).map(|st| st.keyframes as f64)),
            per_stream("path_bytes", "Bytes of video received from the source", MetricType::Counter, &|s| stat(s).map(|st| st.bytes as f64)),
            per_stream(
                "path_frames_dropped",
                "Frames not passed on: before any keyframe, after lost packets up to the next keyframe, or withheld when late",
                MetricType::Counter,
                &|s| stat(s).map(|st| (st.frames_unusable + st.frames_dropped_after_loss + st.frames_withheld_late) as f64),
            ),
            per_stream("path_resyncs", "Times the camera's stream was resynchronised after lost bytes", MetricType::Counter, &|s| stat(s).map(|st| st.resyncs as f64)),
            per_stream("path_reconnects", "Camera sessions started after the first", MetricType::Counter, &|s| stat(s).map(|st| st.reconnects as f64)),
            per_stream("path_bitrate_bytes_per_second", "Video bitrate over the last second", MetricType::Gauge, &|s| stat(s).map(|st| st.bitrate_bps / 8.0)),
            per_stream("path_frames_per_second", "Frame rate over the last second", MetricType::Gauge, &|s| stat(s).map(|st| st.fps)),
            per_stream("path_keyframe_interval_seconds", "Average time between keyframes", MetricType::Gauge, &|s| {
                stat(s).filter(|st| st.keyframes > 0 && st.fps > 0.0).map(|st| st.frames as f64 / st.keyframes as f64 / st.fps)
            }),
        ];
        let paths: Vec<String> = app.registry.list().iter().map(|path| path.name().to_owned()).collect();
        let hls_players = app.hls.players.playing(now);
        series.push(Series {
            name: "path_viewers",
            help: "Viewers now, by transport: WebRTC sessions (over /ws or WHEP), and HLS players that reloaded the playlist in the last 10 s",
            kind: MetricType::Gauge,
            values: paths
                .iter()
                .flat_map(|path| {
                    let labels = |transport: &str| vec![("path", path.clone()), ("transport", transport.to_owned())];
                    [(labels("webrtc"), app.limits.viewers.of(path) as f64), (labels("hls"), hls_players.get(path).copied().unwrap_or(0) as f64)]
                })
                .collect(),
        });
        let totals = app.sessions.totals_by_path();
        // A wall's tiles each count as a session of the path they show.
        let open: HashMap<String, usize> = app.sessions.list().iter().flat_map(|session| session.paths().into_iter().flatten()).fold(HashMap::new(), |mut open, path| {
            *open.entry(path).or_default() += 1;
            open
        });
        let per_path = |name, help, kind, value: fn(&ViewerTotals) -> u64| Series {
            name,
            help,
            kind,
            values: totals.iter().map(|(path, totals)| (vec![("path", path.clone())], value(totals) as f64)).collect(),
        };
        series.extend([
            Series {
                name: "webrtc_sessions_open",
                help: "WebRTC viewer sessions open now",
                kind: MetricType::Gauge,
                values: paths.iter().map(|path| (vec![("path", path.clone())], open.get(path).copied().unwrap_or(0) as f64)).collect(),
            },
            per_path("webrtc_sessions", "WebRTC viewer sessions started", MetricType::Counter, |t| t.sessions),
            per_path("webrtc_frames_sent", "Frames sent to WebRTC viewers", MetricType::Counter, |t| t.frames_sent),
            per_path("webrtc_packets_sent", "RTP packets sent to WebRTC viewers", MetricType::Counter, |t| t.packets_sent),
            per_path("webrtc_bytes_sent", "RTP payload bytes sent to WebRTC viewers", MetricType::Counter, |t| t.bytes_sent),
            per_path("webrtc_nacks", "NACK messages received from WebRTC viewers", MetricType::Counter, |t| t.nacks_received),
            per_path("webrtc_retransmissions", "Packets sent again in answer to NACKs", MetricType::Counter, |t| t.packets_resent),
            per_path("webrtc_keyframe_requests", "Keyframe requests (PLI, FIR) from WebRTC viewers", MetricType::Counter, |t| t.keyframe_requests),
            per_path("webrtc_layer_switches", "Times a WebRTC viewer was switched to another layer", MetricType::Counter, |t| t.layer_switches),
        ]);
        for one in series {
            one.encode(&mut encoder)?;
        }
        let viewer_histograms: [(&str, &str, fn(&ViewerTotals) -> &Histogram); 3] = [
            ("lookout_webrtc_first_frame_seconds", "Time from a WebRTC viewer's watch request to its first frame sent", |t| &t.first_frames),
            ("lookout_webrtc_round_trip_seconds", "Round trip to WebRTC viewers, from each receiver report on the video", |t| &t.link.round_trip_seconds),
            ("lookout_webrtc_loss_ratio", "Fraction of video packets lost, from each WebRTC viewer's receiver report", |t| &t.link.loss_fraction),
        ];
        for (name, help, histogram) in viewer_histograms {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for (path, totals) in &totals {
                encode_histogram(&mut metric, &[("path", path.clone())], histogram(totals))?;
            }
        }
        let mut send_delay = encoder.encode_descriptor(
            "lookout_webrtc_send_delay_seconds",
            "Time a packet waited in Lookout, from its frame complete to handed to a WebRTC viewer's connection (pacing included)",
            None,
            MetricType::Histogram,
        )?;
        for (labels, stream) in &streams {
            if let Some(histogram) = app.sessions.send_delays().since_start(stream.name()) {
                encode_histogram(&mut send_delay, labels, &histogram)?;
            }
        }
        drop(send_delay);
        encode_experience(&mut encoder, &app.sessions.experience_by_path())
    }
}

fn encode_histogram(metric: &mut MetricEncoder, labels: &[(&'static str, String)], histogram: &Histogram) -> Result<(), std::fmt::Error> {
    metric.encode_family(&labels)?.encode_histogram::<NoLabelSet>(histogram.sum(), histogram.count(), &histogram.buckets(), None)
}

/// What the viewers' pages reported of their own playback (`qoe` messages), by path.
fn encode_experience(encoder: &mut DescriptorEncoder, experience: &HashMap<String, PathExperience>) -> Result<(), std::fmt::Error> {
    let histograms: [(&str, &str, fn(&PathExperience) -> &Histogram); 3] = [
        ("lookout_viewer_first_frame_seconds", "Time to the first frame shown, as viewers' pages report it", |e| &e.first_frame),
        ("lookout_viewer_glass_to_glass_seconds", "Capture to display, as viewers' pages measure it, one value per report", |e| &e.glass_to_glass),
        ("lookout_viewer_jitter_buffer_seconds", "The browser's jitter-buffer delay, one value per report", |e| &e.jitter_buffer),
    ];
    for (name, help, histogram) in histograms {
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
        for (path, experience) in experience {
            encode_histogram(&mut metric, &[("path", path.clone())], histogram(experience))?;
        }
    }
    let counters: [(&str, &str, fn(&PathExperience) -> f64); 4] = [
        ("lookout_viewer_freezes", "Freezes viewers' pages saw", |e| e.freezes as f64),
        ("lookout_viewer_freeze_seconds", "Seconds viewers' pages spent frozen", |e| e.freeze_seconds),
        ("lookout_viewer_frames_dropped", "Frames viewers' browsers dropped", |e| e.frames_dropped as f64),
        ("lookout_viewer_reports", "Reports received from viewers' pages", |e| e.reports as f64),
    ];
    for (name, help, value) in counters {
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (path, experience) in experience {
            let labels = [("path", path.clone())];
            metric.encode_family(&labels.as_slice())?.encode_counter::<NoLabelSet, _, f64>(&value(experience), None)?;
        }
    }
    Ok(())
}
