//! Safetensors reader/writer. (Stub: being written.)
