// A fixed pool of worker threads, created once, that runs parallel_for jobs; the calling thread
// takes part as worker 0. Used by the CPU decoders (and anything else that splits work on the CPU).
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
  // threads: total workers including the caller; 0 = std::thread::hardware_concurrency().
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(threads_.size()) + 1; }

  // Runs fn(task, worker) for task in [0, n), tasks handed out dynamically; worker in [0, size())
  // names the thread (for per-thread scratch). Returns when all tasks are done; rethrows the first
  // exception a task threw. Calls from several threads are serialized; fn must not call
  // parallel_for on the same pool.
  void parallel_for(int n, const std::function<void(int task, int worker)>& fn);

 private:
  void worker_loop(int worker);
  void run_tasks(int worker);

  std::vector<std::thread> threads_;
  std::mutex call_mu_;  // one job at a time
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(int, int)>* job_ = nullptr;
  int n_ = 0;
  std::atomic<int> next_{0};
  int active_ = 0;
  unsigned long long generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace posert
