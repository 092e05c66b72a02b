//! The shipped specs compiled by build.rs (`resnet8`, `resnet18`, `demo`), for benches/models.rs,
//! the one-conv models of the ONNX Runtime comparison (`conv_c1`..`conv_c5`, and
//! `conv_c1_pattern`..`conv_c3_pattern`) and the export of a
//! lowered graph for it ([`onnx_twin`], used by `src/bin/ort_twin.rs`); the criterion benches
//! themselves live in benches/ (`cargo bench -p neulens-benches`).

pub mod onnx_twin;

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

/// Issue 4 shape C1: 3×3 conv 64×56×56 → 64, pad 1, bias, ReLU (`compare/specs/conv_c1.yaml`).
pub mod conv_c1 {
    neulens::include_model!("conv_c1");
}

/// Issue 4 shape C2: 3×3 conv 128×28×28 → 128, pad 1, bias, ReLU.
pub mod conv_c2 {
    neulens::include_model!("conv_c2");
}

/// Issue 4 shape C3: 3×3 conv 256×14×14 → 256, pad 1, bias, ReLU.
pub mod conv_c3 {
    neulens::include_model!("conv_c3");
}

/// Issue 4 shape C4: 3×3 conv 512×7×7 → 512, pad 1, bias, ReLU.
pub mod conv_c4 {
    neulens::include_model!("conv_c4");
}

/// Issue 4 shape C5, a stem: 3×3 conv 3×224×224 → 32, stride 2, pad 1, bias, ReLU.
pub mod conv_c5 {
    neulens::include_model!("conv_c5");
}

/// ResNet-18 with its stride-1 3×3 convs pattern-pruned (8 patterns, connectivity 0.5), for the
/// issue 5 comparison (`compare/specs/resnet18_pruned.yaml`).
pub mod resnet18_pruned {
    neulens::include_model!("resnet18_pruned");
}

/// Issue 5: shape C1 (64×56×56 → 64) pattern-pruned (8 patterns, connectivity 0.5), on the
/// pattern-sparse kernel (`compare/specs/conv_c1_pattern.yaml`).
pub mod conv_c1_pattern {
    neulens::include_model!("conv_c1_pattern");
}

/// Issue 5: shape C2 (128×28×28 → 128) pattern-pruned (8 patterns, connectivity 0.5), on the
/// pattern-sparse kernel (`compare/specs/conv_c2_pattern.yaml`).
pub mod conv_c2_pattern {
    neulens::include_model!("conv_c2_pattern");
}

/// Issue 5: shape C3 (256×14×14 → 256) pattern-pruned (8 patterns, connectivity 0.5), on the
/// pattern-sparse kernel (`compare/specs/conv_c3_pattern.yaml`).
pub mod conv_c3_pattern {
    neulens::include_model!("conv_c3_pattern");
}
