#!/usr/bin/env python3
"""Golden tables from Hugging Face diffusers' own schedulers, for sparq's diffusion tests.

Runs diffusers' scheduler classes (DDIM, Euler, Euler ancestral, DPM-Solver++ 2M and 2M SDE,
flow-matching Euler, sCM, LCM; classifier-free guidance and its rescale_noise_cfg as the
pipelines apply them) step by step on small fixed inputs and writes every input and
output as exact IEEE bits to a JSON file that tests/diffusion/diffusers_golden_test.cpp reads
(committed as tests/data/diffusers_golden.json).

Only torch and numpy are needed: the scheduler files are loaded from a diffusers source tree
(none of it is part of sparq) into a stand-in package `diffusers` whose heavy modules
(configuration_utils, utils, utils.torch_utils; huggingface_hub and typing_extensions where they
are missing) are small stand-ins written here.

usage:
  python3 diffusers_golden.py --diffusers-src DIR [--out FILE] [--rev TEXT]
  python3 diffusers_golden.py --diffusers-src DIR --check-imports
  python3 diffusers_golden.py --self-test          (the encoder and the stand-ins; no torch)
  python3 diffusers_golden.py --extract GIT_DIR DEST (copies the scheduler files of a local
                                                      diffusers git mirror's HEAD, and REV)
DIR is a diffusers checkout, its src/diffusers, or a flat folder holding scheduling_*.py.
--out defaults to $OUT/diffusers_golden.json when $OUT is set, else ./diffusers_golden.json.

Two runs per case (JSON keys "f64" and "f32"):
  f64: diffusers' code with every float32 dtype it names (torch.float32, np.float32) read as
       float64 and torch's default dtype float64, inputs float64: diffusers' formulas in double,
       as sparq's host computes its tables (sCM: its `.float()` timesteps are rebuilt in double).
  f32: diffusers exactly as shipped (float32 tables), inputs float32: what a user gets.
Inputs are the same float32 values in both runs (teacher forcing): step i's sample is the f64
run's output of step i - 1 rounded to float32, the model output is a fixed toy function of it,
and noise (where a step draws it) is a fixed table passed as `variance_noise` where the step
takes one, else returned by the stand-in `randn_tensor`. No RNG is used.

Encoding: a vector is one hex string of IEEE-754 bit patterns, big-endian digits, element after
element: 8 digits per float32 ("x", "model", "noise", f32 outputs), 16 per float64 (f64 outputs).
"""
import argparse
import importlib.util
import inspect
import json
import math
import os
import struct
import sys
import types

FORMAT = "sparq-diffusers-golden-1"
SHAPE = (2, 1, 4, 4)  # 2 samples of 16 elements; 4-D because _threshold_sample unpacks B, C, ...
SCHEDULE_NS = (1, 2, 4, 10, 20, 25, 28, 50)  # spec §1.2
NEEDED = ("scheduling_utils", "scheduling_ddim", "scheduling_euler_discrete",
          "scheduling_euler_ancestral_discrete", "scheduling_dpmsolver_multistep",
          "scheduling_flow_match_euler_discrete", "scheduling_scm", "scheduling_lcm")
# Guidance rescale is pipeline code: only its function rescale_noise_cfg is taken from this file.
PIPELINE = "pipeline_stable_diffusion"
PIPELINE_PATH = "src/diffusers/pipelines/stable_diffusion/pipeline_stable_diffusion.py"

# ---------------------------------------------------------------------------------------------
# Encoding (pure Python)


def f32(v):
    """v rounded to the nearest float32, as a Python float."""
    return struct.unpack(">f", struct.pack(">f", v))[0]


def hex32(values):
    return "".join(struct.pack(">f", float(v)).hex() for v in values)


def hex64(values):
    return "".join(struct.pack(">d", float(v)).hex() for v in values)


def unhex_w(s, width):
    fmt = ">f" if width == 8 else ">d"
    return [struct.unpack(fmt, bytes.fromhex(s[i:i + width]))[0] for i in range(0, len(s), width)]


# ---------------------------------------------------------------------------------------------
# Deterministic inputs: a 64-bit LCG and Box-Muller in Python floats, rounded to float32.


def gauss_table(seed, n):
    state = (seed * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
    out = []
    while len(out) < n:
        vals = []
        for _ in range(2):
            state = (state * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
            vals.append(((state >> 11) + 0.5) / 2.0**53)
        r = math.sqrt(-2.0 * math.log(vals[0]))
        out += [r * math.cos(2 * math.pi * vals[1]), r * math.sin(2 * math.pi * vals[1])]
    return [f32(v) for v in out[:n]]


def numel():
    n = 1
    for d in SHAPE:
        n *= d
    return n


def toy_model(x, i, pred, base):
    """A deterministic 'network': float32 of a smooth function of the sample and the step."""
    out = []
    for j, xv in enumerate(x):
        if pred == "sample":  # an x0 guess, sometimes beyond +-1 so clipping acts
            v = 1.3 * math.tanh(0.7 * xv) + 0.4 * base[j]
        else:
            v = 0.8 * base[j] + 0.3 * math.tanh(xv) + 0.05 * math.sin(0.3 * i + j)
        out.append(f32(v))
    return out


# ---------------------------------------------------------------------------------------------
# Stand-in modules


STANDINS = []


def _module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    return m


def _make_config_standin():
    class Config(dict):
        """diffusers' FrozenDict, reduced: attribute and item access to the registered config."""

        def __getattr__(self, k):
            try:
                return self[k]
            except KeyError as e:
                raise AttributeError(k) from e

        def __setattr__(self, k, v):
            self[k] = v

    class ConfigMixin:
        config_name = None
        ignore_for_config = []

        def register_to_config(self, **kwargs):
            cfg = self.__dict__.get("_internal_dict")
            if cfg is None:
                cfg = Config()
                self.__dict__["_internal_dict"] = cfg
            cfg.update(kwargs)

        @property
        def config(self):
            return self.__dict__["_internal_dict"]

    def register_to_config(init):
        """Records every __init__ argument (passed or default) in self.config before __init__
        runs, as diffusers' decorator does."""
        sig = inspect.signature(init)
        names = [p for p in sig.parameters][1:]

        def wrapped(self, *args, **kwargs):
            ignore = set(getattr(self, "ignore_for_config", []))
            cfg = {}
            for name, value in zip(names, args):
                cfg[name] = value
            for name in names:
                p = sig.parameters[name]
                if name in cfg or name in ignore or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                    continue
                cfg[name] = kwargs.get(name, p.default)
            ConfigMixin.register_to_config(self, **cfg)
            init(self, *args, **kwargs)

        wrapped.__signature__ = sig
        wrapped.__name__ = init.__name__
        return wrapped

    return _module("diffusers.configuration_utils", ConfigMixin=ConfigMixin,
                   register_to_config=register_to_config, FrozenDict=Config)


class NoiseFeed:
    """The noise the stand-in randn_tensor returns: set before each step, None when the step must
    not draw any (then a draw is an error: the golden data would depend on an RNG)."""

    value = None
    calls = 0


def _make_utils_standins():
    import logging as _logging
    from collections import OrderedDict

    class BaseOutput(OrderedDict):
        """diffusers' BaseOutput, reduced: a dataclass whose fields are also items."""

        def __post_init__(self):
            for k in getattr(self, "__dataclass_fields__", {}):
                v = getattr(self, k)
                if v is not None:
                    self[k] = v

        def to_tuple(self):
            return tuple(self[k] for k in self.keys())

    def deprecate(*args, **kwargs):
        return None

    def is_scipy_available():
        return importlib.util.find_spec("scipy") is not None

    class _Logging:
        @staticmethod
        def get_logger(name):
            return _logging.getLogger(name)

    class PushToHubMixin:
        pass

    def randn_tensor(shape, generator=None, device=None, dtype=None, layout=None):
        NoiseFeed.calls += 1
        if NoiseFeed.value is None:
            raise RuntimeError("randn_tensor called on a step given no noise (golden data must "
                               "not depend on an RNG)")
        z = NoiseFeed.value
        if tuple(z.shape) != tuple(shape):
            raise RuntimeError(f"randn_tensor shape {tuple(shape)} != noise {tuple(z.shape)}")
        return z.to(dtype=dtype) if dtype is not None else z.clone()

    utils = _module("diffusers.utils", BaseOutput=BaseOutput, deprecate=deprecate,
                    is_scipy_available=is_scipy_available, logging=_Logging,
                    PushToHubMixin=PushToHubMixin)
    utils.__path__ = []
    torch_utils = _module("diffusers.utils.torch_utils", randn_tensor=randn_tensor)
    utils.torch_utils = torch_utils
    return utils, torch_utils


def install_standins():
    """Puts the stand-in package in sys.modules; returns the list of stand-ins used."""
    used = []
    pkg = _module("diffusers")
    pkg.__path__ = []
    sch = _module("diffusers.schedulers")
    sch.__path__ = []
    pkg.schedulers = sch
    sys.modules["diffusers"] = pkg
    sys.modules["diffusers.schedulers"] = sch
    cfg = _make_config_standin()
    utils, torch_utils = _make_utils_standins()
    sys.modules["diffusers.configuration_utils"] = cfg
    sys.modules["diffusers.utils"] = utils
    sys.modules["diffusers.utils.torch_utils"] = torch_utils
    used += ["diffusers.configuration_utils (ConfigMixin, register_to_config)",
             "diffusers.utils (BaseOutput, deprecate, logging, is_scipy_available, PushToHubMixin)",
             "diffusers.utils.torch_utils (randn_tensor -> the fixed noise table)"]
    try:
        import huggingface_hub.utils  # noqa: F401
    except Exception:
        hub = _module("huggingface_hub")
        hub.__path__ = []
        hub.utils = _module("huggingface_hub.utils", validate_hf_hub_args=lambda f: f)
        sys.modules["huggingface_hub"] = hub
        sys.modules["huggingface_hub.utils"] = hub.utils
        used.append("huggingface_hub.utils (validate_hf_hub_args: identity)")
    try:
        import typing_extensions  # noqa: F401
    except Exception:
        sys.modules["typing_extensions"] = _module("typing_extensions", Self=object)
        used.append("typing_extensions (Self)")
    STANDINS[:] = used
    return used


def find_scheduler_dir(src):
    for cand in (src, os.path.join(src, "schedulers"), os.path.join(src, "diffusers", "schedulers"),
                 os.path.join(src, "src", "diffusers", "schedulers")):
        if os.path.isfile(os.path.join(cand, "scheduling_ddim.py")):
            return cand
    raise SystemExit(f"error: no scheduling_ddim.py under {src} (looked in ., schedulers/, "
                     "diffusers/schedulers/, src/diffusers/schedulers/)")


def load_schedulers(src):
    d = find_scheduler_dir(src)
    missing = [n for n in NEEDED if not os.path.isfile(os.path.join(d, n + ".py"))]
    if missing:
        raise SystemExit(f"error: {d} lacks {', '.join(m + '.py' for m in missing)}")
    install_standins()
    mods = {}
    for n in NEEDED:  # scheduling_utils first: the others import it
        name = "diffusers.schedulers." + n
        spec = importlib.util.spec_from_file_location(name, os.path.join(d, n + ".py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        except ImportError as e:
            raise SystemExit(f"error: importing {n}.py needs {e.name or e}: not available here "
                             "and no stand-in covers it") from e
        except Exception as e:  # e.g. `X | None` annotations on Python < 3.10
            raise SystemExit(f"error: loading {n}.py failed on Python {sys.version.split()[0]}: "
                             f"{type(e).__name__}: {e}") from e
        mods[n] = mod
    mods["rescale_noise_cfg"] = load_rescale_noise_cfg(src, d)
    return d, mods


def load_rescale_noise_cfg(src, d):
    """diffusers' rescale_noise_cfg, compiled alone from the pipeline file (it needs only torch:
    importing the pipeline module would need transformers and the rest)."""
    import ast

    import torch

    cands = [os.path.join(d, PIPELINE + ".py"), os.path.join(src, PIPELINE_PATH),
             os.path.join(src, PIPELINE_PATH.replace("src/diffusers/", ""))]
    path = next((c for c in cands if os.path.isfile(c)), None)
    if path is None:
        raise SystemExit(f"error: {PIPELINE}.py not found (looked for {', '.join(cands)}); it "
                         "holds rescale_noise_cfg, the guidance rescale of the CFG cases")
    tree = ast.parse(open(path).read(), path)
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "rescale_noise_cfg"]
    if not fns:
        raise SystemExit(f"error: no function rescale_noise_cfg in {path}")
    ns = {"torch": torch}
    exec(compile(ast.Module(body=fns, type_ignores=[]), path, "exec"), ns)
    return types.SimpleNamespace(fn=ns["rescale_noise_cfg"], path=path)


# ---------------------------------------------------------------------------------------------
# float64 mode: the scheduler modules see float32 dtypes as float64


class _F64View:
    def __init__(self, real, f64):
        object.__setattr__(self, "_real", real)
        object.__setattr__(self, "_f64", f64)

    def __getattr__(self, k):
        if k == "float32":
            return self._f64
        return getattr(self._real, k)


class Mode:
    def __init__(self, mods, f64):
        import numpy as np
        import torch

        self.mods, self.f64 = mods, f64
        self.torch, self.np = torch, np
        self.dtype = torch.float64 if f64 else torch.float32

    def __enter__(self):
        torch, np = self.torch, self.np
        self.saved_default = torch.get_default_dtype()
        if self.f64:
            torch.set_default_dtype(torch.float64)
            for m in self.modules():
                m.torch = _F64View(torch, torch.float64)
                m.np = _F64View(np, np.float64)
        return self

    def __exit__(self, *exc):
        self.torch.set_default_dtype(self.saved_default)
        for m in self.modules():
            m.torch, m.np = self.torch, self.np
        return False

    def modules(self):
        return [m for m in self.mods.values() if isinstance(m, types.ModuleType)]

    def tensor(self, values):
        return self.torch.tensor(values, dtype=self.dtype).reshape(SHAPE)


# ---------------------------------------------------------------------------------------------
# Cases. config: diffusers constructor kwargs; step: step() kwargs; set: set_timesteps kwargs.

SD = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}


def cases():
    c = []

    def add(name, cls, config, n, step=None, set_kwargs=None, noise=False, pred=None, cfg=None):
        c.append({"name": name, "scheduler": cls, "config": config, "num_steps": n,
                  "step_kwargs": step or {}, "set_timesteps_kwargs": set_kwargs or {},
                  "noise": noise, "toy": pred or config.get("prediction_type", "epsilon"),
                  "cfg": cfg})

    sd_ddim = dict(SD, clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    add("ddim eps sd leading", "DDIMScheduler", sd_ddim, 10)
    add("ddim eps linear linspace", "DDIMScheduler",
        {"clip_sample": False, "timestep_spacing": "linspace"}, 8)
    add("ddim eps eta=1", "DDIMScheduler", dict(sd_ddim), 8, step={"eta": 1.0}, noise=True)
    add("ddim v zsnr trailing", "DDIMScheduler",
        dict(SD, clip_sample=False, prediction_type="v_prediction", rescale_betas_zero_snr=True,
             timestep_spacing="trailing"), 10)
    add("ddim sample clip clipped-eps eta=0.5", "DDIMScheduler",
        dict(SD, clip_sample=True, clip_sample_range=1.2, prediction_type="sample"), 6,
        step={"eta": 0.5, "use_clipped_model_output": True}, noise=True)
    add("ddim eps thresholding cosine", "DDIMScheduler",
        {"beta_schedule": "squaredcos_cap_v2", "clip_sample": False, "thresholding": True,
         "dynamic_thresholding_ratio": 0.9, "sample_max_value": 1.5}, 6)
    add("euler eps sd", "EulerDiscreteScheduler", dict(SD), 10)
    add("euler v sd leading", "EulerDiscreteScheduler",
        dict(SD, prediction_type="v_prediction", timestep_spacing="leading", steps_offset=1), 8)
    add("euler eps karras", "EulerDiscreteScheduler", dict(SD, use_karras_sigmas=True), 8)
    add("euler eps churn", "EulerDiscreteScheduler", dict(SD, timestep_spacing="trailing"), 8,
        step={"s_churn": 1.0, "s_tmin": 0.5, "s_tmax": 10.0, "s_noise": 1.003}, noise=True)
    add("euler eps sigma_min final", "EulerDiscreteScheduler",
        dict(SD, final_sigmas_type="sigma_min"), 6)
    add("euler v zsnr trailing", "EulerDiscreteScheduler",
        dict(SD, prediction_type="v_prediction", rescale_betas_zero_snr=True,
             timestep_spacing="trailing"), 6)
    add("euler-a eps sd", "EulerAncestralDiscreteScheduler", dict(SD), 8, noise=True)
    add("euler-a v trailing", "EulerAncestralDiscreteScheduler",
        dict(SD, prediction_type="v_prediction", timestep_spacing="trailing"), 6, noise=True)
    add("dpm++2m eps sd", "DPMSolverMultistepScheduler", dict(SD), 10)
    add("dpm++2m eps sd 20", "DPMSolverMultistepScheduler", dict(SD), 20)
    add("dpm++2m v karras", "DPMSolverMultistepScheduler",
        dict(SD, prediction_type="v_prediction", use_karras_sigmas=True), 10)
    add("dpm++2m eps leading sigma_min", "DPMSolverMultistepScheduler",
        dict(SD, timestep_spacing="leading", steps_offset=1, final_sigmas_type="sigma_min"), 8)
    add("dpm++2m flow shift3", "DPMSolverMultistepScheduler",
        {"prediction_type": "flow_prediction", "use_flow_sigmas": True, "flow_shift": 3.0}, 10,
        pred="flow")
    add("dpm++2m sigma_min second-order final", "DPMSolverMultistepScheduler",
        dict(SD, final_sigmas_type="sigma_min", lower_order_final=False), 16)
    add("dpm++2m euler_at_final karras", "DPMSolverMultistepScheduler",
        dict(SD, final_sigmas_type="sigma_min", euler_at_final=True, use_karras_sigmas=True), 16)
    add("dpm++2m thresholding", "DPMSolverMultistepScheduler",
        dict(SD, thresholding=True, dynamic_thresholding_ratio=0.85, sample_max_value=2.0), 8)
    add("dpm++2m-sde eps karras", "DPMSolverMultistepScheduler",
        dict(SD, algorithm_type="sde-dpmsolver++", use_karras_sigmas=True), 10, noise=True)
    add("flow euler sd3 shift3", "FlowMatchEulerDiscreteScheduler", {"shift": 3.0}, 28, pred="flow")
    add("flow euler flux dynamic", "FlowMatchEulerDiscreteScheduler",
        {"use_dynamic_shifting": True, "base_shift": 0.5, "max_shift": 1.15}, 8,
        set_kwargs={"sigmas": "linspace(1, 1/N, N)", "mu": 1.15}, pred="flow")
    add("flow euler shift_terminal", "FlowMatchEulerDiscreteScheduler",
        {"shift": 3.0, "shift_terminal": 0.1}, 8, pred="flow")
    add("flow euler dynamic linear", "FlowMatchEulerDiscreteScheduler",
        {"use_dynamic_shifting": True, "time_shift_type": "linear"}, 6,
        set_kwargs={"sigmas": "linspace(1, 1/N, N)", "mu": 0.8}, pred="flow")
    add("flow euler stochastic", "FlowMatchEulerDiscreteScheduler",
        {"shift": 3.0, "stochastic_sampling": True}, 6, noise=True, pred="flow")
    add("scm 2-step", "SCMScheduler", {}, 2, noise=True, pred="flow")
    add("scm 4-step", "SCMScheduler", {}, 4, set_kwargs={"intermediate_timesteps": None},
        noise=True, pred="flow")
    add("lcm eps 4-step", "LCMScheduler", {}, 4, noise=True)
    add("lcm v 6-step", "LCMScheduler", {"prediction_type": "v_prediction"}, 6, noise=True)
    # Classifier-free guidance as the pipelines do it (u + g·(c − u), then rescale_noise_cfg).
    add("ddim eps cfg 7.5 rescale 0.7", "DDIMScheduler", dict(sd_ddim), 8,
        cfg={"guidance_scale": 7.5, "guidance_rescale": 0.7})
    add("euler eps cfg 5", "EulerDiscreteScheduler", dict(SD), 8, cfg={"guidance_scale": 5.0})
    add("dpm++2m v karras cfg 6 rescale 0.5", "DPMSolverMultistepScheduler",
        dict(SD, prediction_type="v_prediction", use_karras_sigmas=True), 8,
        cfg={"guidance_scale": 6.0, "guidance_rescale": 0.5})
    add("flow euler cfg 3.5 rescale 1", "FlowMatchEulerDiscreteScheduler", {"shift": 3.0}, 6,
        pred="flow", cfg={"guidance_scale": 3.5, "guidance_rescale": 1.0})
    add("lcm eps thresholding clip", "LCMScheduler",
        {"thresholding": True, "dynamic_thresholding_ratio": 0.8, "sample_max_value": 3.0}, 4,
        noise=True)
    return c


def schedule_cases():
    s = [("DDIMScheduler", dict(SD, steps_offset=1)),
         ("DDIMScheduler", dict(SD, timestep_spacing="trailing", rescale_betas_zero_snr=True)),
         ("DDIMScheduler", {"timestep_spacing": "linspace"}),
         ("EulerDiscreteScheduler", dict(SD)),
         ("EulerDiscreteScheduler", dict(SD, timestep_spacing="leading", steps_offset=1)),
         ("EulerDiscreteScheduler", dict(SD, timestep_spacing="trailing")),
         ("EulerDiscreteScheduler", dict(SD, use_karras_sigmas=True)),
         ("EulerDiscreteScheduler", {"beta_schedule": "squaredcos_cap_v2"}),
         ("DPMSolverMultistepScheduler", dict(SD)),
         ("DPMSolverMultistepScheduler", dict(SD, use_karras_sigmas=True)),
         ("DPMSolverMultistepScheduler", dict(SD, timestep_spacing="leading", steps_offset=1)),
         ("DPMSolverMultistepScheduler", dict(SD, timestep_spacing="trailing")),
         ("DPMSolverMultistepScheduler",
          {"prediction_type": "flow_prediction", "use_flow_sigmas": True, "flow_shift": 3.0}),
         ("FlowMatchEulerDiscreteScheduler", {"shift": 3.0}),
         ("FlowMatchEulerDiscreteScheduler", {"use_dynamic_shifting": True}),
         ("FlowMatchEulerDiscreteScheduler", {"shift": 3.0, "shift_terminal": 0.1}),
         ("EulerDiscreteScheduler", dict(SD, rescale_betas_zero_snr=True,
                                         timestep_spacing="trailing")),
         ("DPMSolverMultistepScheduler", dict(SD, final_sigmas_type="sigma_min")),
         ("LCMScheduler", {})]
    out = []
    for cls, cfg in s:
        for n in SCHEDULE_NS:
            kw = {}
            if cls == "FlowMatchEulerDiscreteScheduler" and cfg.get("use_dynamic_shifting"):
                kw = {"sigmas": "linspace(1, 1/N, N)", "mu": 1.15}
            out.append({"scheduler": cls, "config": cfg, "num_steps": n,
                        "set_timesteps_kwargs": kw})
    return out


# ---------------------------------------------------------------------------------------------
# Running


def module_of(mods, cls):
    for m in mods.values():
        if isinstance(m, types.ModuleType) and hasattr(m, cls):
            return getattr(m, cls)
    raise SystemExit(f"error: no class {cls} in the loaded scheduler files")


def set_kwargs_for(mode, kw, n):
    out = dict(kw)
    if out.get("sigmas") == "linspace(1, 1/N, N)":  # as FluxPipeline passes them
        out["sigmas"] = mode.np.linspace(1.0, 1.0 / n, n)
    return out


def make_scheduler(mods, mode, cls, config, n, set_kw):
    sch = module_of(mods, cls)(**config)
    sch.set_timesteps(n, **set_kwargs_for(mode, set_kw, n))
    if cls == "SCMScheduler" and mode.f64:  # set_timesteps ends in .float(): rebuild in double
        inter = set_kw.get("intermediate_timesteps", 1.3)
        tmax = set_kw.get("max_timesteps", 1.5708)
        t = [tmax, inter, 0.0] if inter is not None else \
            [tmax - k * tmax / n for k in range(n)] + [0.0]
        sch.timesteps = mode.torch.tensor(t, dtype=mode.torch.float64)
    if hasattr(sch, "set_begin_index"):
        sch.set_begin_index(0)  # step index = call count (no timestep look-up)
    return sch


def float_list(t):
    return [float(v) for v in (t.tolist() if hasattr(t, "tolist") else t)]


def table(sch, mode):
    """The scheduler's timesteps and sigmas (float64 bits: exact for either run)."""
    d = {"timesteps": hex64(float_list(sch.timesteps))}
    if hasattr(sch, "sigmas") and sch.sigmas is not None:
        d["sigmas"] = hex64(float_list(sch.sigmas))
    if getattr(sch, "init_noise_sigma", None) is not None:
        d["init_noise_sigma"] = float(sch.init_noise_sigma)
    return d


def scm_model_output(mode, t, x, v, sigma_data):
    """SanaSprintPipeline's conversion of the transformer's flow velocity v to the TrigFlow
    output SCMScheduler.step takes (sparq's sCM step takes v itself)."""
    torch = mode.torch
    tau = torch.sin(t) / (torch.cos(t) + torch.sin(t))
    norm = torch.sqrt(tau**2 + (1 - tau) ** 2)
    xin = (x / sigma_data) * norm
    return ((1 - 2 * tau) * xin + (1 - 2 * tau + 2 * tau**2) * v) / norm * sigma_data


def run_case(mods, mode, case, inputs):
    """Runs the case; inputs: None (build them: teacher forcing from this run's outputs) or the
    list of per-step (x, model, noise) float32 value lists. Returns (inputs, steps, table)."""
    n = case["num_steps"]
    sch = make_scheduler(mods, mode, case["scheduler"], case["config"], n,
                         case["set_timesteps_kwargs"])
    N = numel()
    base = gauss_table(101, N)
    base_cond = gauss_table(202, N)
    cfg = case.get("cfg")
    build = inputs is None
    if build:
        inputs = []
        scale = float(getattr(sch, "init_noise_sigma", 1.0))
        if case["scheduler"] == "SCMScheduler":
            scale = float(sch.config.sigma_data)  # SanaSprintPipeline: latents * sigma_data
        x = [f32(scale * v) for v in gauss_table(7, N)]
    steps = []
    for i in range(n):
        if build:
            m = toy_model(x, i, case["toy"], base)
            if cfg:  # [uncond; cond], as sparq's model_out with cfg
                m = m + toy_model(x, i, case["toy"], base_cond)
            z = gauss_table(1000 + i, N) if case["noise"] else None
            inputs.append((x, m, z))
        x, m, z = inputs[i]
        t = sch.timesteps[i]
        xt = mode.tensor(x)
        if cfg:
            u, c = mode.tensor(m[:N]), mode.tensor(m[N:])
            mt = u + cfg["guidance_scale"] * (c - u)
            if cfg.get("guidance_rescale", 0.0) > 0:
                mt = mods["rescale_noise_cfg"].fn(mt, c, guidance_rescale=cfg["guidance_rescale"])
        else:
            mt = mode.tensor(m)
        zt = mode.tensor(z) if z is not None else None
        if case["scheduler"] == "SCMScheduler":
            mt = scm_model_output(mode, t, xt, mt, float(sch.config.sigma_data))
        kw = dict(case["step_kwargs"])
        via = None
        if zt is not None and case["scheduler"] in ("DDIMScheduler", "DPMSolverMultistepScheduler"):
            kw["variance_noise"] = zt
            via = "variance_noise"
            NoiseFeed.value = None
        else:
            NoiseFeed.value = zt
            via = "randn_tensor" if zt is not None else None
        NoiseFeed.calls = 0
        if hasattr(sch, "scale_model_input"):
            sch.scale_model_input(xt, t)
        out = sch.step(mt, t, xt, return_dict=False, **kw)
        NoiseFeed.value = None
        y = out[0]
        if case["scheduler"] == "DPMSolverMultistepScheduler":
            x0 = sch.model_outputs[-1]  # the converted output: x0 (the history sparq keeps)
        else:
            x0 = out[1] if len(out) > 1 else None
        if y.dtype != mode.dtype or (x0 is not None and x0.dtype != mode.dtype):
            raise SystemExit(f"error: {case['name']} step {i}: output dtype {y.dtype} in the "
                             f"{'f64' if mode.f64 else 'f32'} run")
        enc = hex64 if mode.f64 else hex32
        rec = {"y": enc(float_list(y.reshape(-1)))}
        if x0 is not None:
            rec["x0"] = enc(float_list(x0.reshape(-1)))
        if via == "randn_tensor":
            rec["randn_calls"] = NoiseFeed.calls
        rec["noise_via"] = via
        steps.append(rec)
        if build and i + 1 < n:
            x = [f32(v) for v in float_list(y.reshape(-1))]
    return inputs, steps, table(sch, mode)


def jsonable(v):
    """Config values as JSON: non-finite floats as the strings "inf", "-inf", "nan"; numpy
    scalars and arrays as Python numbers and lists."""
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def effective_config(mods, case):
    """Every constructor argument, passed or defaulted (what sparq's mapping must account for)."""
    sch = module_of(mods, case["scheduler"])(**case["config"])
    return jsonable(dict(sch.config))


def float32_leftovers(sch, mode):
    """Tensors/arrays of the scheduler still float32 in the f64 run (reported in the JSON)."""
    import numpy as np

    torch = mode.torch
    out = []
    for k, v in vars(sch).items():
        if isinstance(v, torch.Tensor) and v.dtype == torch.float32:
            out.append(k)
        elif isinstance(v, np.ndarray) and v.dtype == np.float32:
            out.append(k)
    return sorted(out)


def generate(mods, rev):
    import numpy as np
    import torch

    doc = {"format": FORMAT,
           "generator": {"script": "bench/anchors/diffusers_golden.py", "diffusers_rev": rev,
                         "torch": torch.__version__, "numpy": np.__version__,
                         "python": sys.version.split()[0], "standins": STANDINS},
           "encoding": "hex IEEE bits, big-endian digits; 8 per float32, 16 per float64",
           "shape": list(SHAPE), "cases": [], "schedules": []}
    for case in cases():
        rec = jsonable({k: case[k] for k in ("name", "scheduler", "num_steps", "step_kwargs",
                                             "set_timesteps_kwargs")})
        if case["cfg"]:
            rec["cfg"] = case["cfg"]  # "model" holds [uncond; cond]
        rec["config"] = effective_config(mods, case)
        with Mode(mods, True) as m64:
            inputs, s64, t64 = run_case(mods, m64, case, None)
            left = float32_leftovers(make_scheduler(mods, m64, case["scheduler"], case["config"],
                                                    case["num_steps"],
                                                    case["set_timesteps_kwargs"]), m64)
        with Mode(mods, False) as m32:
            _, s32, t32 = run_case(mods, m32, case, inputs)
        rec["f64_float32_leftovers"] = left
        rec["tables"] = {"f64": t64, "f32": t32}
        rec["steps"] = []
        for i, (x, mo, z) in enumerate(inputs):
            st = {"x": hex32(x), "model": hex32(mo), "f64": s64[i], "f32": s32[i]}
            if z is not None:
                st["noise"] = hex32(z)
            rec["steps"].append(st)
        doc["cases"].append(rec)
        print(f"case {case['name']}: {case['num_steps']} steps")
    for sc in schedule_cases():
        rec = jsonable(dict(sc))
        rec["config"] = effective_config(mods, sc)
        for key, f64 in (("f64", True), ("f32", False)):
            with Mode(mods, f64) as mode, np.errstate(all="ignore"):  # NaN tables are data
                try:
                    sch = make_scheduler(mods, mode, sc["scheduler"], sc["config"],
                                         sc["num_steps"], sc["set_timesteps_kwargs"])
                    rec[key] = table(sch, mode)
                except Exception as e:  # recorded, the test skips it with the reason
                    rec[key] = {"error": f"{type(e).__name__}: {e}"}
        doc["schedules"].append(rec)
    print(f"schedules: {len(doc['schedules'])}")
    return doc


def check_imports(mods, d):
    print(f"scheduler files: {d}")
    print(f"rescale_noise_cfg from: {mods['rescale_noise_cfg'].path}")
    print("stand-ins used:")
    for s in STANDINS:
        print(f"  {s}")
    import numpy as np
    import torch

    print(f"torch {torch.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}")
    for case in cases():
        for f64 in (True, False):
            with Mode(mods, f64) as mode:
                make_scheduler(mods, mode, case["scheduler"], case["config"], case["num_steps"],
                               case["set_timesteps_kwargs"])
    print(f"constructed every case's scheduler ({len(cases())} cases) in both modes: ok")


def self_test():
    vals = [0.0, -0.0, 1.0, -2.5, 1e-30, 3.4028234663852886e38, float("inf"), 0.1]
    assert unhex_w(hex64(vals), 16) == vals
    v32 = [f32(v) for v in vals]
    assert unhex_w(hex32(v32), 8) == v32
    assert hex32([1.0]) == "3f800000" and hex64([1.0]) == "3ff0000000000000"
    assert hex32([-0.0]) == "80000000"
    g = gauss_table(7, 1000)
    assert g == gauss_table(7, 1000) and all(v == f32(v) for v in g)
    mean = sum(g) / len(g)
    var = sum((v - mean) ** 2 for v in g) / len(g)
    assert abs(mean) < 0.1 and abs(var - 1) < 0.15, (mean, var)
    install_standins()
    cfgmod = sys.modules["diffusers.configuration_utils"]

    class S(cfgmod.ConfigMixin):
        @cfgmod.register_to_config
        def __init__(self, a=1, b="x", c=None):
            self.seen = self.config.a

    s = S(5, c=3)
    assert s.config == {"a": 5, "b": "x", "c": 3} and s.seen == 5 and s.config.b == "x"
    doc = json.loads(json.dumps({"x": hex32(v32)}))
    assert unhex_w(doc["x"], 8) == v32
    print("self-test: ok")


def extract(git_dir, dest):
    import subprocess

    os.makedirs(dest, exist_ok=True)
    rev = subprocess.run(["git", "--git-dir", git_dir, "rev-parse", "HEAD"], check=True,
                         capture_output=True, text=True).stdout.strip()
    files = [(n, f"src/diffusers/schedulers/{n}.py") for n in NEEDED] + [(PIPELINE, PIPELINE_PATH)]
    for n, path in files:
        text = subprocess.run(["git", "--git-dir", git_dir, "show", f"HEAD:{path}"], check=True,
                              capture_output=True).stdout
        with open(os.path.join(dest, n + ".py"), "wb") as f:
            f.write(text)
    with open(os.path.join(dest, "REV"), "w") as f:
        f.write(rev + "\n")
    print(f"copied {len(files)} files of diffusers {rev} to {dest}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--diffusers-src")
    ap.add_argument("--out")
    ap.add_argument("--rev", default=None, help="the diffusers revision, recorded in the JSON")
    ap.add_argument("--check-imports", action="store_true")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--extract", nargs=2, metavar=("GIT_DIR", "DEST"))
    a = ap.parse_args()
    if a.extract:
        extract(*a.extract)
        return
    if a.self_test:
        self_test()
        return
    if not a.diffusers_src:
        ap.error("--diffusers-src is required")
    for need in ("torch", "numpy"):
        if importlib.util.find_spec(need) is None:
            raise SystemExit(f"error: {need} is not installed (the script needs torch and numpy)")
    d, mods = load_schedulers(a.diffusers_src)
    if a.check_imports:
        check_imports(mods, d)
        return
    rev = a.rev
    if rev is None and os.path.isfile(os.path.join(a.diffusers_src, "REV")):
        rev = open(os.path.join(a.diffusers_src, "REV")).read().strip()
    doc = generate(mods, rev)
    out = a.out or os.path.join(os.environ.get("OUT", "."), "diffusers_golden.json")
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, allow_nan=False)
        f.write("\n")
    os.replace(tmp, out)
    print(f"wrote {out} ({os.path.getsize(out)} bytes)")


if __name__ == "__main__":
    main()
