//! The shipped specs compiled by build.rs (`resnet8`, `resnet18`, `demo`), for benches/models.rs;
//! the criterion benches themselves live in benches/ (`cargo bench -p neulens-benches`).

/// MLPerf Tiny ResNet-8 (3×32×32), from `specs/resnet8.yaml`.
pub mod resnet8 {
    neulens::include_model!("resnet8");
}

/// torchvision ResNet-18 (3×224×224), from `specs/resnet18.yaml`.
pub mod resnet18 {
    neulens::include_model!("resnet18");
}

/// The small demo network (1×28×28), from `specs/demo.yaml`.
pub mod demo {
    neulens::include_model!("demo");
}

/// A micro-flow model (1×96×96, 3×3 tiles, five width levels, learned gate), from
/// `specs/microflow_demo.yaml`.
pub mod microflow_demo {
    neulens::include_model!("microflow_demo");
}
