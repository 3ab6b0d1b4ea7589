#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace posert {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Spins until done() or until spin_us microseconds have passed; true if done() held.
template <class Done>
bool spin_until(int spin_us, Done&& done) {
  if (spin_us <= 0) return done();
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= until) return done();
  }
}

}  // namespace

ThreadPool::ThreadPool(int threads, int spin_us) {
  const int hw = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = hw;
  if (threads <= 0) threads = 1;
  spin_us_ = (hw > 0 && threads <= hw) ? std::max(0, spin_us) : 0;
  threads_.reserve(static_cast<size_t>(threads - 1));
  for (int i = 1; i < threads; ++i) threads_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::run_tasks(int worker) {
  for (int i = next_.fetch_add(1); i < n_; i = next_.fetch_add(1)) {
    try {
      (*job_)(i, worker);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
      next_.store(n_);  // skip the remaining tasks
    }
  }
}

void ThreadPool::worker_loop(int worker) {
  unsigned long long seen = 0;
  for (;;) {
    // A new job is seen through generation_ (spinning first, then asleep). stop_ is read only
    // under mu_: the destructor runs when no job is in flight, so a spinning worker falls through
    // to the sleeping wait, which sees it.
    if (!spin_until(spin_us_, [&] { return generation_.load(std::memory_order_acquire) != seen; })) {
      std::unique_lock<std::mutex> lock(mu_);
      ++sleepers_;
      start_cv_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_acquire) != seen; });
      --sleepers_;
      if (stop_) return;
    }
    seen = generation_.load(std::memory_order_acquire);
    run_tasks(worker);
    if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      // The last worker out wakes the caller if it went to sleep. The caller checks active_ under
      // mu_ before it sleeps, so taking mu_ here orders the two: no wake-up is lost.
      bool wake;
      {
        std::lock_guard<std::mutex> lock(mu_);
        wake = caller_asleep_;
      }
      if (wake) done_cv_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int n, const std::function<void(int task, int worker)>& fn) {
  if (n <= 0) return;
  std::lock_guard<std::mutex> call(call_mu_);
  if (threads_.empty() || n == 1) {
    for (int i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    n_ = n;
    error_ = nullptr;
    next_.store(0, std::memory_order_relaxed);
    active_.store(static_cast<int>(threads_.size()), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    wake = sleepers_ > 0;
  }
  if (wake) start_cv_.notify_all();
  run_tasks(0);
  if (!spin_until(spin_us_, [&] { return active_.load(std::memory_order_acquire) == 0; })) {
    std::unique_lock<std::mutex> lock(mu_);
    caller_asleep_ = true;
    done_cv_.wait(lock, [&] { return active_.load(std::memory_order_acquire) == 0; });
    caller_asleep_ = false;
  }
  std::exception_ptr err;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = nullptr;
    err = error_;
    error_ = nullptr;
  }
  if (err) std::rethrow_exception(err);
}

}  // namespace posert
