// SPDX-License-Identifier: MIT
// shim.cpp: the torch backend, the only C++ in the tree: TorchScript load,
// inference, training (whole steps, or split around a data-parallel sync),
// weight and training state export; no exception leaves this file.
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <streambuf>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/script.h>
#include <torch/version.h>

#include "model/model.h"

namespace {

struct shim_model {
	torch::jit::Module mod;
	int64_t c = 0, h = 0, w = 0, classes = 0;
	torch::Tensor mean; // [1, C, 1, 1]
	torch::Tensor std;
	std::unique_ptr<torch::optim::Optimizer> opt;
	int optimizer = IDN_MODEL_SGD; // opt's kind
	bool training = false;
};

std::atomic<int> g_threads{1};
std::once_flag g_once;

// A read-only, seekable stream over caller memory, so a 45 MB model is not
// copied before torch::jit::load parses it.
struct membuf : std::streambuf {
	membuf(const void *p, size_t n)
	{
		char *b = const_cast<char *>(static_cast<const char *>(p));
		setg(b, b, b + n);
	}
	pos_type
	seekoff(off_type off, std::ios_base::seekdir dir,
	    std::ios_base::openmode) override
	{
		char *to = dir == std::ios_base::beg ? eback() + off :
		    dir == std::ios_base::cur ? gptr() + off : egptr() + off;
		if (to < eback() || to > egptr()) {
			return pos_type(off_type(-1));
		}
		setg(eback(), to, egptr());
		return pos_type(to - eback());
	}
	pos_type
	seekpos(pos_type pos, std::ios_base::openmode m) override
	{
		return seekoff(off_type(pos), std::ios_base::beg, m);
	}
};

// keep_msg copies an exception's text for the caller. TorchScript errors
// carry a long interpreter traceback; the reason is its last part.
// It runs inside catch clauses, so it must not throw: on bad_alloc the
// caller gets no text (the error code's text stands in).
char *
keep_msg(const char *prefix, const char *what) noexcept
{
	try {
		std::string s(what ? what : "unknown C++ exception");
		size_t at = s.rfind("RuntimeError: ");
		if (at != std::string::npos && at > 0) {
			s = s.substr(at);
		}
		while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
			s.pop_back();
		}
		if (s.size() > 2000) {
			s.resize(2000);
		}
		std::string full = std::string(prefix) + s;
		return strdup(full.c_str());
	} catch (...) {
		return nullptr;
	}
}

// guard runs f, turning every exception into IDN_EMODEL (IDN_ENOMEM for
// bad_alloc) with its text in *err.
template <typename F>
int
guard(char **err, const char *prefix, F f)
{
	try {
		return f();
	} catch (const c10::Error &e) {
		*err = keep_msg(prefix, e.what_without_backtrace());
		return IDN_EMODEL;
	} catch (const std::bad_alloc &) {
		return IDN_ENOMEM;
	} catch (const std::exception &e) {
		*err = keep_msg(prefix, e.what());
		return IDN_EMODEL;
	} catch (...) {
		*err = keep_msg(prefix, nullptr);
		return IDN_EMODEL;
	}
}

// apply_threads sets torch's intra-op threads and, unless the user's
// environment says otherwise, OpenBLAS to one thread: OpenBLAS threads on
// top of torch's oversubscribe small machines (3x slower on 2 cores).
// OpenBLAS read its environment when it was loaded, before main, so the
// setenv only serves child processes; openblas_set_num_threads acts now.
void
apply_threads()
{
	at::set_num_threads(g_threads.load());
	if (getenv("OPENBLAS_NUM_THREADS") == nullptr) {
		setenv("OPENBLAS_NUM_THREADS", "1", 0);
		auto fn = reinterpret_cast<void (*)(int)>(
		    dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
		if (fn != nullptr) {
			fn(1);
		}
	}
}

void
init_once()
{
	std::call_once(g_once, apply_threads);
}

torch::Tensor
normalise(shim_model *s, const uint8_t *x, size_t n)
{
	auto raw = torch::from_blob(const_cast<uint8_t *>(x),
	    {(int64_t) n, s->c, s->h, s->w}, torch::kUInt8);
	return raw.to(torch::kFloat32).div_(255.0).sub_(s->mean).div_(s->std);
}

void
set_training(shim_model *s, bool on)
{
	if (s->training != on) {
		s->mod.train(on);
		s->training = on;
	}
}

// float_params lists the floating parameters in the module's order: the
// optimiser's parameters, and the order of a sync buffer's gradients.
std::vector<torch::Tensor>
float_params(shim_model *s)
{
	std::vector<torch::Tensor> v;
	for (const auto &p : s->mod.parameters()) {
		if (p.is_floating_point()) {
			v.push_back(p);
		}
	}
	return v;
}

// float_buffers lists the floating buffers (BatchNorm's running mean and
// variance; not its integer batch count) in the module's order.
std::vector<torch::Tensor>
float_buffers(shim_model *s)
{
	std::vector<torch::Tensor> v;
	for (const auto &b : s->mod.buffers()) {
		if (b.is_floating_point()) {
			v.push_back(b);
		}
	}
	return v;
}

// flat views n floats of caller memory as a 1-d tensor.
torch::Tensor
flat(const float *p, int64_t n)
{
	return torch::from_blob(const_cast<float *>(p), {n}, torch::kFloat32);
}

// state_key is the key of a parameter's entry in Optimizer::state(), as
// torch's SGD and Adam (1.13) compute it.
std::string
state_key(const torch::Tensor &p)
{
	return c10::guts::to_string(p.unsafeGetTensorImpl());
}

// backward runs the forward pass and the backward pass of one training
// batch (gradients replaced, not accumulated) and returns the loss.
torch::Tensor
backward(shim_model *s, const uint8_t *x, const uint8_t *y, size_t n)
{
	if (!s->opt) {
		throw std::runtime_error("training not started");
	}
	set_training(s, true);
	auto target = torch::from_blob(const_cast<uint8_t *>(y),
	    {(int64_t) n}, torch::kUInt8).to(torch::kInt64);
	s->opt->zero_grad();
	auto out = s->mod.forward({normalise(s, x, n)}).toTensor();
	auto l = at::cross_entropy_loss(out, target);
	l.backward();
	return l;
}

int
forward(shim_model *s, const uint8_t *x, size_t n, float *out)
{
	c10::InferenceMode inference;
	set_training(s, false);
	auto y = s->mod.forward({normalise(s, x, n)}).toTensor();
	if (y.dim() != 2 || y.size(0) != (int64_t) n ||
	    y.size(1) != s->classes) {
		std::ostringstream os;
		os << "model output has shape " << y.sizes() << ", expected ["
		   << n << ", " << s->classes << "]";
		throw std::runtime_error(os.str());
	}
	y = y.to(torch::kFloat32).contiguous();
	memcpy(out, y.data_ptr<float>(), n * s->classes * sizeof(float));
	return IDN_OK;
}

} // namespace

extern "C" {

int
shim_set_threads(int n)
{
	g_threads.store(n);
	char *err = nullptr;
	int rv = guard(&err, "", [] {
		init_once();
		at::set_num_threads(g_threads.load());
		return IDN_OK;
	});
	free(err);
	return rv;
}

int
shim_load(const model_desc *d, const void *bytes, size_t len, void **impl,
    char **err)
{
	if (bytes == nullptr || len == 0) {
		*err = strdup("no TorchScript bytes");
		return IDN_EINVAL;
	}
	shim_model *s = nullptr;
	int rv = guard(err, "cannot load TorchScript: ", [&] {
		init_once();
		auto m = std::make_unique<shim_model>();
		membuf buf(bytes, len);
		std::istream in(&buf);
		m->mod = torch::jit::load(in, torch::kCPU);
		m->mod.eval();
		m->c = d->channels;
		m->h = d->height;
		m->w = d->width;
		m->classes = d->classes;
		m->mean = torch::from_blob(const_cast<float *>(d->mean),
		    {1, m->c, 1, 1}, torch::kFloat32).clone();
		m->std = torch::from_blob(const_cast<float *>(d->std),
		    {1, m->c, 1, 1}, torch::kFloat32).clone();
		s = m.release();
		return IDN_OK;
	});
	if (rv != IDN_OK) {
		return rv;
	}
	// One probe image checks the descriptor's shape against the model.
	std::vector<uint8_t> zero((size_t) (s->c * s->h * s->w), 0);
	std::vector<float> out((size_t) s->classes);
	rv = guard(err, "model does not fit the descriptor's input/classes: ",
	    [&] { return forward(s, zero.data(), 1, out.data()); });
	if (rv != IDN_OK) {
		shim_close(s);
		return rv;
	}
	*impl = s;
	return IDN_OK;
}

void
shim_close(void *impl)
{
	try {
		delete static_cast<shim_model *>(impl);
	} catch (...) {
	}
}

int
shim_forward(void *impl, const uint8_t *x, size_t n, float *out, char **err)
{
	shim_model *s = static_cast<shim_model *>(impl);
	return guard(err, "inference failed: ",
	    [&] { return forward(s, x, n, out); });
}

int
shim_train_begin(void *impl, const idn_model_train_opts *o, char **err)
{
	shim_model *s = static_cast<shim_model *>(impl);
	return guard(err, "cannot start training: ", [&] {
		std::vector<torch::Tensor> params = float_params(s);
		for (auto &p : params) {
			p.requires_grad_(true);
		}
		if (params.empty()) {
			throw std::runtime_error("model has no parameters");
		}
		if (o->optimizer == IDN_MODEL_ADAM) {
			s->opt = std::make_unique<torch::optim::Adam>(params,
			    torch::optim::AdamOptions(o->lr).weight_decay(
			    o->weight_decay));
		} else {
			s->opt = std::make_unique<torch::optim::SGD>(params,
			    torch::optim::SGDOptions(o->lr).momentum(
			    o->momentum).weight_decay(o->weight_decay));
		}
		s->optimizer = o->optimizer;
		return IDN_OK;
	});
}

int
shim_train_step(void *impl, const uint8_t *x, const uint8_t *y, size_t n,
    double lr, double *loss, char **err)
{
	shim_model *s = static_cast<shim_model *>(impl);
	return guard(err, "training step failed: ", [&] {
		auto l = backward(s, x, y, n);
		for (auto &g : s->opt->param_groups()) {
			g.options().set_lr(lr);
		}
		s->opt->step();
		*loss = l.item<double>();
		return IDN_OK;
	});
}

int
shim_sync_len(void *impl, size_t *grads, size_t *buffers, char **err)
{
	shim_model *s = static_cast<shim_model *>(impl);
	return guard(err, "", [&] {
		size_t g = 0, b = 0;
		for (const auto &p : float_params(s)) {
			g += (size_t) p.numel();
		}
		for (const auto &t : float_buffers(s)) {
			b += (size_t) t.numel();
		}
		*grads = g;
		*buffers = b;
		return IDN_OK;
	});
}

int
shim_train_grad(void *impl, const uint8_t *x, const uint8_t *y, size_t n,
    float scale, float *buf, double *loss, char **err)
{
	shim_model *s = static_cast<shim_model *>(impl);
	return guard(err, "training step failed: ", [&] {
		auto l = backward(s, x, y, n);
		torch::NoGradGuard no_grad;
		// One pass over each gradient: *_out writes straight into buf
		// (ResNet-18's 45 MB twice per step otherwise).
		auto by = torch::scalar_tensor(scale, torch::kFloat32);
		size_t off = 0;
		for (const auto &p : float_params(s)) {
			auto dst = flat(buf + off, p.numel());
			// A parameter the forward pass did not use has no
			// gradient: it sends zeros and is left alone.
			if (p.grad().defined()) {
				at::mul_out(dst, p.grad().reshape(-1), by);
			} else {
				dst.zero_();
			}
			off += (size_t) p.numel();
		}
		for (const auto &b : float_buffers(s)) {
			flat(buf + off, b.numel()).copy_(b.reshape(-1));
			off += (size_t) b.numel();
		}
		*loss = l.item<double>();
		return IDN_OK;
	});
}

int
shim_train_apply(void *impl, const float *buf, double count, double world,
    double lr, char **err)
{
	shim_model *s = static_cast<shim_model *>(impl);
	return guard(err, "training step failed: ", [&] {
		if (!s->opt) {
			throw std::runtime_error("training not started");
		}
		torch::NoGradGuard no_grad;
		auto by = torch::scalar_tensor(count, torch::kFloat32);
		size_t off = 0;
		for (const auto &p : float_params(s)) {
			auto g = p.grad();
			if (g.defined()) {
				at::div_out(g, flat(buf + off, p.numel()).view(
				    g.sizes()), by);
			}
			off += (size_t) p.numel();
		}
		for (auto &b : float_buffers(s)) {
			b.copy_(flat(buf + off, b.numel()).view(b.sizes()))
			    .div_(world);
			off += (size_t) b.numel();
		}
		for (auto &g : s->opt->param_groups()) {
			g.options().set_lr(lr);
		}
		s->opt->step();
		return IDN_OK;
	});
}

// The training state is a pickled dict of tensors (torch::pickle_save's
// zip format): "w:NAME" for every parameter and buffer, "optimizer" (its
// kind), and per floating parameter i (optimiser order) that has state
// "o:i:momentum_buffer" (SGD) or "o:i:step", "o:i:exp_avg",
// "o:i:exp_avg_sq" and "o:i:max_exp_avg_sq" (Adam).
int
shim_state_save(void *impl, size_t head, void **out, size_t *len,
    char **err)
{
	shim_model *s = static_cast<shim_model *>(impl);
	return guard(err, "cannot export the training state: ", [&] {
		if (!s->opt) {
			throw std::runtime_error("training not started");
		}
		c10::Dict<std::string, torch::Tensor> d;
		for (const auto &p : s->mod.named_parameters()) {
			d.insert("w:" + p.name, p.value.detach());
		}
		for (const auto &b : s->mod.named_buffers()) {
			d.insert("w:" + b.name, b.value.detach());
		}
		d.insert("optimizer", torch::tensor((int64_t) s->optimizer));
		auto params = float_params(s);
		auto &state = s->opt->state();
		for (size_t i = 0; i < params.size(); i++) {
			auto it = state.find(state_key(params[i]));
			if (it == state.end()) {
				continue;
			}
			std::string k = "o:" + std::to_string(i) + ":";
			if (s->optimizer == IDN_MODEL_ADAM) {
				auto &st = static_cast<
				    torch::optim::AdamParamState &>(*it->second);
				d.insert(k + "step", torch::tensor(st.step()));
				d.insert(k + "exp_avg", st.exp_avg());
				d.insert(k + "exp_avg_sq", st.exp_avg_sq());
				if (st.max_exp_avg_sq().defined()) {
					d.insert(k + "max_exp_avg_sq",
					    st.max_exp_avg_sq());
				}
			} else {
				auto &st = static_cast<
				    torch::optim::SGDParamState &>(*it->second);
				if (st.momentum_buffer().defined()) {
					d.insert(k + "momentum_buffer",
					    st.momentum_buffer());
				}
			}
		}
		std::vector<char> b = torch::jit::pickle_save(d);
		char *p = static_cast<char *>(malloc(head + b.size()));
		if (p == nullptr) {
			return IDN_ENOMEM;
		}
		memcpy(p + head, b.data(), b.size());
		*out = p;
		*len = head + b.size();
		return IDN_OK;
	});
}

int
shim_state_load(void *impl, const void *data, size_t len, char **err)
{
	shim_model *s = static_cast<shim_model *>(impl);
	return guard(err, "cannot load the training state: ", [&] {
		if (!s->opt) {
			throw std::runtime_error("training not started");
		}
		const char *c = static_cast<const char *>(data);
		auto iv = torch::jit::pickle_load(std::vector<char>(c,
		    c + len));
		if (!iv.isGenericDict()) {
			throw std::runtime_error("not a training state");
		}
		std::map<std::string, torch::Tensor> from;
		for (const auto &e : iv.toGenericDict()) {
			if (!e.key().isString() || !e.value().isTensor()) {
				throw std::runtime_error("not a training "
				    "state");
			}
			from[e.key().toStringRef()] = e.value().toTensor();
		}
		size_t used = 0;
		auto need = [&](const std::string &key,
		    const torch::Tensor &like) {
			auto it = from.find(key);
			if (it == from.end() ||
			    it->second.sizes() != like.sizes() ||
			    it->second.dtype() != like.dtype()) {
				throw std::runtime_error("it does not match "
				    "the model at " + key);
			}
			used++;
			return it->second;
		};
		std::vector<std::pair<torch::Tensor, torch::Tensor>> pairs;
		for (const auto &p : s->mod.named_parameters()) {
			pairs.emplace_back(p.value, need("w:" + p.name,
			    p.value));
		}
		for (const auto &b : s->mod.named_buffers()) {
			pairs.emplace_back(b.value, need("w:" + b.name,
			    b.value));
		}
		auto kind = from.find("optimizer");
		if (kind == from.end() || kind->second.numel() != 1 ||
		    kind->second.item<int64_t>() != s->optimizer) {
			throw std::runtime_error("it is for another "
			    "optimiser");
		}
		used++;
		// Build the optimiser's state aside; change nothing until
		// everything matched.
		auto params = float_params(s);
		std::vector<std::unique_ptr<torch::optim::OptimizerParamState>>
		    states(params.size());
		for (size_t i = 0; i < params.size(); i++) {
			std::string k = "o:" + std::to_string(i) + ":";
			if (s->optimizer == IDN_MODEL_ADAM) {
				auto step = from.find(k + "step");
				if (step == from.end()) {
					continue;
				}
				used++;
				auto st = std::make_unique<
				    torch::optim::AdamParamState>();
				st->step(step->second.item<int64_t>());
				st->exp_avg(need(k + "exp_avg", params[i]));
				st->exp_avg_sq(need(k + "exp_avg_sq",
				    params[i]));
				if (from.count(k + "max_exp_avg_sq")) {
					st->max_exp_avg_sq(need(k +
					    "max_exp_avg_sq", params[i]));
				}
				states[i] = std::move(st);
			} else if (from.count(k + "momentum_buffer")) {
				auto st = std::make_unique<
				    torch::optim::SGDParamState>();
				st->momentum_buffer(need(k + "momentum_buffer",
				    params[i]));
				states[i] = std::move(st);
			}
		}
		if (used != from.size()) {
			throw std::runtime_error("it has tensors the model "
			    "lacks");
		}
		torch::NoGradGuard no_grad;
		for (auto &pr : pairs) {
			pr.first.copy_(pr.second);
		}
		auto &state = s->opt->state();
		state.clear();
		for (size_t i = 0; i < params.size(); i++) {
			if (states[i]) {
				state[state_key(params[i])] =
				    std::move(states[i]);
			}
		}
		return IDN_OK;
	});
}

int
shim_weights(void *impl, float *out, size_t n, char **err)
{
	shim_model *s = static_cast<shim_model *>(impl);
	return guard(err, "", [&] {
		torch::NoGradGuard no_grad;
		std::vector<torch::Tensor> all = float_params(s);
		for (const auto &b : float_buffers(s)) {
			all.push_back(b);
		}
		size_t off = 0;
		for (const auto &t : all) {
			if (off + (size_t) t.numel() > n) {
				throw std::runtime_error("weights buffer too "
				    "small");
			}
			flat(out + off, t.numel()).copy_(t.reshape(-1));
			off += (size_t) t.numel();
		}
		if (off != n) {
			throw std::runtime_error("weights buffer too large");
		}
		return IDN_OK;
	});
}

int
shim_average(void *impl, const float *buf, size_t n, double world,
    char **err)
{
	shim_model *s = static_cast<shim_model *>(impl);
	return guard(err, "model averaging failed: ", [&] {
		torch::NoGradGuard no_grad;
		std::vector<torch::Tensor> all = float_params(s);
		size_t total = 0;
		for (const auto &b : float_buffers(s)) {
			all.push_back(b);
		}
		for (const auto &t : all) {
			total += (size_t) t.numel();
		}
		if (total != n) {
			throw std::runtime_error("averaging buffer does not "
			    "fit the model");
		}
		// One pass per tensor: div_out reads the sum and writes the
		// mean in place (ResNet-18's 45 MB once, not copied then
		// divided).
		auto by = torch::scalar_tensor(world, torch::kFloat32);
		size_t off = 0;
		for (auto &t : all) {
			at::div_out(t, flat(buf + off, t.numel()).view(
			    t.sizes()), by);
			off += (size_t) t.numel();
		}
		return IDN_OK;
	});
}

void
shim_train_end(void *impl)
{
	shim_model *s = static_cast<shim_model *>(impl);
	char *err = nullptr;
	guard(&err, "", [&] {
		s->opt.reset();
		set_training(s, false);
		return IDN_OK;
	});
	free(err);
}

int
shim_save(void *impl, void **out, size_t *len, char **err)
{
	shim_model *s = static_cast<shim_model *>(impl);
	return guard(err, "cannot export: ", [&] {
		// Saved in eval mode, so the bytes serve as a model as is.
		set_training(s, false);
		std::ostringstream os;
		s->mod.save(os);
		std::string b = os.str();
		void *p = malloc(b.size() ? b.size() : 1);
		if (p == nullptr) {
			return IDN_ENOMEM;
		}
		memcpy(p, b.data(), b.size());
		*out = p;
		*len = b.size();
		return IDN_OK;
	});
}

int
shim_restore(void *impl, const void *data, size_t len, char **err)
{
	shim_model *s = static_cast<shim_model *>(impl);
	return guard(err, "cannot import weights: ", [&] {
		membuf buf(data, len);
		std::istream in(&buf);
		auto src = torch::jit::load(in, torch::kCPU);
		std::map<std::string, torch::Tensor> from;
		for (const auto &p : src.named_parameters()) {
			from[p.name] = p.value;
		}
		for (const auto &b : src.named_buffers()) {
			from[b.name] = b.value;
		}
		std::vector<std::pair<torch::Tensor, torch::Tensor>> pairs;
		auto match = [&](const std::string &name,
		    const torch::Tensor &t) {
			auto it = from.find(name);
			if (it == from.end() ||
			    it->second.sizes() != t.sizes() ||
			    it->second.dtype() != t.dtype()) {
				throw std::runtime_error("weights do not "
				    "match the model at " + name);
			}
			pairs.emplace_back(t, it->second);
		};
		for (const auto &p : s->mod.named_parameters()) {
			match(p.name, p.value);
		}
		for (const auto &b : s->mod.named_buffers()) {
			match(b.name, b.value);
		}
		if (pairs.size() != from.size()) {
			throw std::runtime_error("weights have tensors the "
			    "model lacks");
		}
		// Check everything first, copy after: m is unchanged on error.
		torch::NoGradGuard no_grad;
		for (auto &pr : pairs) {
			pr.first.copy_(pr.second);
		}
		return IDN_OK;
	});
}

void
shim_runtime(char *buf, size_t size)
{
	char *err = nullptr;
	int rv = guard(&err, "", [&] {
		init_once();
		auto cfg = reinterpret_cast<char *(*)(void)>(
		    dlsym(RTLD_DEFAULT, "openblas_get_config"));
		auto nth = reinterpret_cast<int (*)(void)>(
		    dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
		const char *env = getenv("OPENBLAS_NUM_THREADS");
		snprintf(buf, size, "torch %s, intra-op threads %d, inter-op "
		    "threads %d; BLAS %s, %d thread(s); "
		    "OPENBLAS_NUM_THREADS=%s", TORCH_VERSION,
		    at::get_num_threads(), at::get_num_interop_threads(),
		    cfg ? cfg() : "not OpenBLAS (reference BLAS is slow)",
		    nth ? nth() : 1, env ? env : "(unset)");
		return IDN_OK;
	});
	if (rv != IDN_OK && size > 0) {
		snprintf(buf, size, "torch runtime unknown: %s",
		    err ? err : "");
	}
	free(err);
}

} // extern "C"
