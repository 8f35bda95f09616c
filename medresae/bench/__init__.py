"""Benchmarks behind `medresae bench`: quality against classical denoisers
(`medresae.bench.quality`), speed against plain PyTorch
(`medresae.bench.speed`, with the reference network in
`medresae.bench.torch_reference`) and the loader's speed
(`medresae.bench.data`)."""
