using System;
using System.ComponentModel;
using System.Runtime.ExceptionServices;
using System.Threading;

namespace Unrolled.Runtime;

/// <summary>Work split into numbered chunks; generated networks implement it.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IParallelWork
{
    /// <summary>Runs chunk <paramref name="chunk"/>. Chunks of one job may run on any thread, in any order.</summary>
    void Execute(int chunk);
}

/// <summary>
/// A fixed set of background threads that run the chunks of one job at a time. What a chunk computes
/// depends only on its number, never on the thread that runs it, so results are the same however the
/// chunks are scheduled. When the pool is busy (a network on another thread, or a job started from a
/// chunk of the running one), the caller runs every chunk itself: slower, never different. Allocation-free
/// per job.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class WorkerPool
{
    // 1 while a job owns the pool. Taken with a compare-exchange rather than a lock: a lock is re-entrant, so a
    // job started from a chunk running on the owning thread would take it again and overwrite the running job.
    private static int s_busy;
    private static readonly SemaphoreSlim s_wake = new(0);
    private static Thread[]? s_threads;

    private static IParallelWork? s_work;
    private static int s_chunkCount;
    private static int s_nextChunk;
    private static int s_remaining;
    private static int s_awakeWorkers; // woken for this job and not yet back to waiting
    private static ExceptionDispatchInfo? s_error;

    /// <summary>The number of threads that can run chunks at once, the caller included.</summary>
    public static int Concurrency => Environment.ProcessorCount;

    /// <summary>Runs chunks 0 … <paramref name="chunkCount"/> − 1 of <paramref name="work"/> and returns when all are done.</summary>
    public static void Run(IParallelWork work, int chunkCount)
    {
        if (chunkCount <= 1 || Environment.ProcessorCount == 1 || Interlocked.CompareExchange(ref s_busy, 1, 0) != 0)
        {
            for (int i = 0; i < chunkCount; i++) work.Execute(i);
            return;
        }
        try
        {
            EnsureThreads();
            s_work = work;
            s_error = null;
            s_chunkCount = chunkCount;
            Volatile.Write(ref s_remaining, chunkCount);
            Volatile.Write(ref s_nextChunk, 0);
            int helpers = Math.Min(chunkCount - 1, s_threads!.Length);
            Volatile.Write(ref s_awakeWorkers, helpers);
            s_wake.Release(helpers);
            RunChunks();
            // Wait for every chunk, and for every woken worker to be back, so that no worker can
            // pick up a chunk number of the next job while still holding this one.
            var spin = new SpinWait();
            while (Volatile.Read(ref s_remaining) > 0 || Volatile.Read(ref s_awakeWorkers) > 0) spin.SpinOnce(sleep1Threshold: -1);
            s_work = null;
            s_error?.Throw();
        }
        finally
        {
            Volatile.Write(ref s_busy, 0);
        }
    }

    private static void RunChunks()
    {
        IParallelWork? work = s_work;
        int chunk;
        while (work is not null && (chunk = Interlocked.Increment(ref s_nextChunk) - 1) < s_chunkCount)
        {
            try { work.Execute(chunk); }
            catch (Exception e) { s_error ??= ExceptionDispatchInfo.Capture(e); }
            finally { Interlocked.Decrement(ref s_remaining); }
        }
    }

    private static void EnsureThreads()
    {
        if (s_threads is not null) return;
        var threads = new Thread[Math.Max(1, Environment.ProcessorCount - 1)];
        for (int i = 0; i < threads.Length; i++)
        {
            threads[i] = new Thread(WorkerLoop) { IsBackground = true, Name = "Unrolled worker " + (i + 1) };
            threads[i].Start();
        }
        s_threads = threads;
    }

    private static void WorkerLoop()
    {
        while (true)
        {
            s_wake.Wait();
            RunChunks();
            Interlocked.Decrement(ref s_awakeWorkers);
        }
    }
}
