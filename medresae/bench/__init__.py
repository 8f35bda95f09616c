"""Benchmarks behind `medresae bench`: quality against classical denoisers
(`medresae.bench.quality`) and speed against plain PyTorch
(`medresae.bench.speed`, with the reference network in
`medresae.bench.torch_reference`)."""
