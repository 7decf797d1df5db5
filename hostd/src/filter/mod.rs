//! Log filters and health rules compiled to native code with cranelift-jit.
//! (Being written: see issue "filters and health rules compiled with cranelift-jit".)
