//! The engine's quantized matmuls at SmolLM2-135M's shapes, one token
//! (decode) and 64 tokens (prefill), with the work split over 2 threads by
//! forge's parking pool, by rayon, and by `std::thread::scope` per call,
//! and on one thread.
//!
//!   cargo bench -p forge-kernels --bench qmatvec --profile dev

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use forge_kernels::blocks::{BlockQ4_1, BlockQ8_0};
use forge_kernels::{Parallel, Pool, QLinear, Scoped, Scratch};
use half::f16;

struct Rayon(rayon::ThreadPool);

impl Parallel for Rayon {
    fn threads(&self) -> usize {
        self.0.current_num_threads()
    }

    fn run(&self, job: &(dyn Fn(usize) + Sync)) {
        self.0.broadcast(|ctx| job(ctx.index()));
    }
}

fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 32) as u8
        })
        .collect()
}

fn q4_1(rows: usize, cols: usize) -> QLinear {
    let b = noise(rows * cols / 32 * 16, 1);
    let blocks = b
        .chunks_exact(16)
        .map(|qs| BlockQ4_1 {
            d: f16::from_f32(0.01),
            m: f16::from_f32(-0.08),
            qs: qs.try_into().unwrap(),
        })
        .collect();
    QLinear::q4_1(rows, cols, blocks).unwrap()
}

fn q8_0(rows: usize, cols: usize) -> QLinear {
    let b = noise(rows * cols, 2);
    let blocks = b
        .chunks_exact(32)
        .map(|qs| BlockQ8_0 {
            d: f16::from_f32(0.01),
            qs: std::array::from_fn(|j| qs[j] as i8),
        })
        .collect();
    QLinear::q8_0(rows, cols, blocks).unwrap()
}

fn bench(c: &mut Criterion) {
    let pool = Pool::new(2);
    let one = Pool::new(1);
    let rayon = Rayon(
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap(),
    );
    let scoped = Scoped(2);
    let shapes = [
        ("ffn_up q4_1 1536x576", q4_1(1536, 576)),
        ("ffn_down q4_1 576x1536", q4_1(576, 1536)),
        ("attn_k q4_1 192x576", q4_1(192, 576)),
        ("output q8_0 49152x576", q8_0(49152, 576)),
    ];
    let mut scratch = Scratch::default();
    for n in [1usize, 64] {
        let mut g = c.benchmark_group(format!("qmatmul_{n}_tokens"));
        for (name, m) in &shapes {
            if n > 1 && m.rows() > 10_000 {
                continue; // prefill only needs the last token's logits
            }
            let x: Vec<f32> = noise(n * m.cols(), 3)
                .iter()
                .map(|&b| b as f32 / 128.0 - 1.0)
                .collect();
            let mut out = vec![0f32; n * m.rows()];
            g.throughput(Throughput::Elements((m.rows() * m.cols() * n) as u64));
            let runners: [(&str, &dyn Parallel); 4] = [
                ("pool2", &pool),
                ("rayon2", &rayon),
                ("scope2", &scoped),
                ("single", &one),
            ];
            for (how, p) in runners {
                g.bench_function(BenchmarkId::new(*name, how), |b| {
                    b.iter(|| m.forward(&x, n, &mut out, &mut scratch, p))
                });
            }
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
