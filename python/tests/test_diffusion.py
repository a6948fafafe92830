# Diffusion: schedules against known diffusers values, a DDIM step against its formula, device ==
# fallback for a fused CFG step with Philox noise, in-place numpy latents, noise statistics.
import numpy as np
import pytest

import sparq
from conftest import rng, same_bits

sd = sparq.diffusion


def test_schedules_known_values():
    ddim = sd.make_schedule(sd.Sampler.DDIM, sd.ScheduleConfig(), 10)
    assert ddim.timesteps == [900.0 - 100 * i for i in range(10)]  # diffusers "leading"
    cfg = sd.ScheduleConfig(beta_schedule=sd.BetaSchedule.ScaledLinear, beta_start=0.00085,
                            beta_end=0.012)
    betas = sd.make_betas(cfg)
    assert len(betas) == 1000
    assert betas[0] == pytest.approx(0.00085) and betas[-1] == pytest.approx(0.012)
    ac = sd.cumprod_alphas(betas)
    assert ac[-1] == pytest.approx(np.prod(1 - np.array(betas)), rel=1e-12)
    euler = sd.make_schedule(sd.Sampler.Euler, cfg, 20)
    assert len(euler.sigmas) == 21 and euler.sigmas[-1] == 0.0
    assert euler.init_noise_sigma == pytest.approx(max(euler.sigmas))
    assert sd.model_input_scale(euler, 0) == pytest.approx(1 / np.sqrt(euler.sigmas[0] ** 2 + 1))
    assert sd.flux_mu(256) == pytest.approx(0.5) and sd.flux_mu(4096) == pytest.approx(1.15)
    with pytest.raises(sparq.Error) as e:
        sd.make_schedule(sd.Sampler.DDIM, sd.ScheduleConfig(), 0)
    assert e.value.code == "invalid_argument"
    with pytest.raises(sparq.Error, match="no field 'nope'"):
        sd.ScheduleConfig(nope=1)


def test_ddim_step_formula_in_place_numpy(cpu):
    sched = sd.make_schedule(sd.Sampler.DDIM, sd.ScheduleConfig(), 10)
    g = rng(20)
    x = g.standard_normal((1, 4, 8, 8)).astype(np.float32)
    eps = g.standard_normal((1, 4, 8, 8)).astype(np.float32)
    latent = x.copy()
    sd.step(cpu, sd.step_coeffs(sched, 0), latent, eps)  # numpy latent: overwritten in place
    a_t = sched.alphas_cumprod[900]
    a_p = sched.alphas_cumprod[800]
    x0 = (x.astype(np.float64) - np.sqrt(1 - a_t) * eps) / np.sqrt(a_t)
    np.testing.assert_allclose(latent, np.sqrt(a_p) * x0 + np.sqrt(1 - a_p) * eps, rtol=1e-5,
                               atol=1e-5)


def test_fused_cfg_step_device_equals_fallback(dev, cpu):
    cfg = sd.ScheduleConfig(beta_schedule=sd.BetaSchedule.ScaledLinear, beta_start=0.00085,
                            beta_end=0.012)
    sched = sd.make_schedule(sd.Sampler.EulerAncestral, cfg, 8)
    shape = [2, 4, 16, 16]
    g = rng(21)
    pred = g.standard_normal([4] + shape[1:]).astype(np.float32)  # [uncond; cond]
    results = []
    for ctx in (dev, cpu):
        seeds = sd.make_seeds(ctx, [7, 2**40 + 3])
        latent = sd.randn(ctx, seeds, shape, scale=sched.init_noise_sigma)
        nxt = ctx.empty(sparq.f32, shape)
        co = sd.step_coeffs(sched, 2, cfg=True, guidance_scale=4.5)
        assert co.draws_noise()
        sd.step(ctx, co, latent, pred, model_in_next=nxt, seeds=seeds)  # device tensors in place
        results.append((latent.numpy(), nxt.numpy()))
    assert same_bits(results[0][0], results[1][0]) and same_bits(results[0][1], results[1][1])


def test_randn_deterministic_and_normal(dev, cpu):
    z_dev = sd.randn(dev, sd.make_seeds(dev, [1, 2]), [2, 4096]).numpy()
    z_cpu = sd.randn(cpu, sd.make_seeds(cpu, [1, 2]), [2, 4096]).numpy()
    assert same_bits(z_dev, z_cpu)
    assert abs(z_cpu.mean()) < 0.05 and abs(z_cpu.std() - 1) < 0.05
    assert not np.array_equal(z_cpu[0], z_cpu[1])  # one stream per seed
    other = sd.randn(cpu, sd.make_seeds(cpu, [1, 2]), [2, 4096], step=1).numpy()
    assert not np.array_equal(z_cpu, other)


def test_renoise_and_retrieval(cpu):
    sched = sd.make_schedule(sd.Sampler.DDIM, sd.ScheduleConfig(), 50)
    rc = sd.renoise_coeffs(sched, 10)
    x0 = rng(22).standard_normal((2, 64)).astype(np.float32)
    seeds = sd.make_seeds(cpu, [5, 6])
    y = sd.renoise(cpu, x0, seeds, rc).numpy()
    z = sd.randn(cpu, seeds, [2, 64], step=rc.step, tag=sd.TAG_RENOISE).numpy()
    np.testing.assert_allclose(y, rc.b * z.astype(np.float64) + rc.a * x0, rtol=1e-6, atol=1e-6)
    E = rng(23).standard_normal((6, 32)).astype(np.float32)
    En = sd.l2_normalize(cpu, E).numpy()
    np.testing.assert_allclose(np.linalg.norm(En, axis=1), 1, rtol=1e-6)
    valid = np.array([1, 1, 0, 1, 1, 1], np.uint8)
    idx, score = sd.sim_top1(cpu, En, valid, En[[1, 2]])
    assert idx[0] == 1 and score[0] == pytest.approx(1, rel=1e-6)
    assert idx[1] != 2  # an invalid row never wins
    top_idx, top_score = sd.sim_topk(cpu, En, valid, En[[1, 2]], 3)
    assert top_idx.shape == (2, 3) and top_idx[0, 0] == 1 and 2 not in top_idx


def test_lcm_rescale_threshold(dev, cpu):
    cfg = sd.ScheduleConfig(beta_schedule=sd.BetaSchedule.ScaledLinear, beta_start=0.00085,
                            beta_end=0.012, thresholding=True, sample_max_value=2.0)
    sched = sd.make_schedule(sd.Sampler.LCM, cfg, 4)
    assert list(sched.timesteps) == [999, 759, 499, 259]
    shape = [2, 4, 16, 16]
    pred = rng(24).standard_normal([4] + shape[1:]).astype(np.float32)
    x = rng(25).standard_normal(shape).astype(np.float32)
    out = []
    for ctx in (dev, cpu):
        lat = x.copy()
        co = sd.step_coeffs(sched, 1, cfg=True, guidance_scale=5.0, guidance_rescale=0.7)
        sd.step(ctx, co, lat, pred, seeds=sd.make_seeds(ctx, [1, 2]))
        out.append(lat)
    assert same_bits(out[0], out[1])
