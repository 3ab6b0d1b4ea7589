// A fixed pool of worker threads, created once, that runs parallel_for jobs; the calling thread
// takes part as worker 0. Used by the CPU decoders (and anything else that splits work on the CPU).
//
// Waiting is hybrid, as OpenMP runtimes do it: an idle worker first spins on the job counter for
// up to spin_us microseconds after its last job (so back-to-back jobs, such as a decoder's phases
// or a video's frames decoded in a loop, start without a futex wake-up per worker), then sleeps on
// a condition variable; the caller spins the same way for the workers to finish. A pool with more
// threads than the machine has hardware threads never spins (a spinning thread would hold the core
// a working one needs).
#pragma once
#include <atomic>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace posert {

class ThreadPool {
 public:
  static constexpr int kDefaultSpinUs = 200;

  // threads: total workers including the caller; 0 = std::thread::hardware_concurrency().
  // spin_us: how long an idle thread spins before it sleeps (0: sleep at once).
  explicit ThreadPool(int threads = 0, int spin_us = kDefaultSpinUs);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(threads_.size()) + 1; }
  int spin_us() const { return spin_us_; }  // after the oversubscription check: 0 where it never spins

  // Runs fn(task, worker) for task in [0, n), tasks handed out dynamically; worker in [0, size())
  // names the thread (for per-thread scratch). Returns when all tasks are done; rethrows the first
  // exception a task threw. Calls from several threads are serialized; fn must not call
  // parallel_for on the same pool.
  void parallel_for(int n, const std::function<void(int task, int worker)>& fn);

 private:
  void worker_loop(int worker);
  void run_tasks(int worker);

  std::vector<std::thread> threads_;
  int spin_us_ = 0;
  std::mutex call_mu_;  // one job at a time
  std::mutex mu_;       // guards the sleeping waits, stop_ and error_
  std::condition_variable start_cv_, done_cv_;
  // Written by parallel_for before it publishes generation_ (release), read by the workers after
  // they see it (acquire).
  const std::function<void(int, int)>* job_ = nullptr;
  int n_ = 0;
  std::atomic<int> next_{0};
  std::atomic<int> active_{0};                   // workers still in the current job
  std::atomic<unsigned long long> generation_{0};  // one per job
  int sleepers_ = 0;                             // workers asleep on start_cv_ (under mu_)
  bool caller_asleep_ = false;                   // parallel_for asleep on done_cv_ (under mu_)
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace posert
