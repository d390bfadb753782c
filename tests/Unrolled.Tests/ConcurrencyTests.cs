using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Unrolled.Runtime;
using Unrolled.Tests.Training;
using Xunit;

namespace Unrolled.Tests;

/// <summary>
/// Run alone: the tests start more threads than there are cores and must own them while they compare results
/// (and nothing else may change <see cref="Kernels.MaxVectorBits"/> meanwhile).
/// </summary>
[CollectionDefinition(nameof(ConcurrencyCollection), DisableParallelization = true)]
public class ConcurrencyCollection { }

/// <summary>
/// One instance of a network is not thread-safe, but separate instances are independent: trained on separate
/// threads at the same time they end bit for bit where one instance trained alone ends, and their inference
/// on many threads at once gives the single-threaded outputs. All of them share the process-wide
/// <see cref="WorkerPool"/>, which must run every chunk of every job exactly once whoever calls it.
/// </summary>
[Collection(nameof(ConcurrencyCollection))]
public class ConcurrencyTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(2);

    /// <summary>Runs <paramref name="body"/>(i) on <paramref name="threads"/> new threads that start together,
    /// and rethrows the first failure. Fails the test (rather than hang it) if a thread does not finish.</summary>
    private static void OnThreads(int threads, Action<int> body)
    {
        using var start = new Barrier(threads);
        var errors = new Exception?[threads];
        var workers = Enumerable.Range(0, threads).Select(i => new Thread(() =>
        {
            try
            {
                start.SignalAndWait();
                body(i);
            }
            catch (Exception e)
            {
                errors[i] = e;
            }
        }) { IsBackground = true, Name = $"concurrency test {i}" }).ToArray();
        foreach (var t in workers) t.Start();
        foreach (var t in workers)
            Assert.True(t.Join(Deadline), $"{t.Name} did not finish within {Deadline} (a deadlock?)");
        Exception[] failures = errors.OfType<Exception>().ToArray();
        if (failures.Length > 0)
            throw new AggregateException($"{failures.Length} of {threads} thread(s) failed", failures);
    }


    /// <summary>Three passes of Adam over the batches; the network has batch norm and dropout.</summary>
    private static SmallKeras Train(int threads, (float[] Input, int[] Labels)[] batches)
    {
        var network = new SmallKeras(7) { MaxDegreeOfParallelism = threads };
        var adam = Optimizer.Adam(0.01f);
        for (int pass = 0; pass < 3; pass++)
            foreach (var (input, labels) in batches) network.TrainStep(input, labels, adam);
        return network;
    }

    [Fact]
    public void SeparateInstancesTrainedOnSeparateThreadsAtOnceMatchOneTrainedAlone()
    {
        // Instances asking for 2 cores use the worker pool when it is free and run their chunks themselves when
        // another instance holds it; instances asking for 1 never use it. Each must match its own kind trained alone.
        const int Threads = 6;
        var batches = TrainingHelpers.SmallKerasBatches(5, 16, seed: 90);
        var alone = new Dictionary<int, SmallKeras> { [1] = Train(1, batches), [2] = Train(2, batches) };
        Assert.NotNull(TrainingHelpers.StateDifference(alone[1], alone[2])); // one and two chunks round differently: the comparison below is sharp

        var trained = new SmallKeras[Threads];
        OnThreads(Threads, i => trained[i] = Train(1 + i % 2, batches));

        var problems = Enumerable.Range(0, Threads)
            .Select(i => (i, Cores: 1 + i % 2, Difference: TrainingHelpers.StateDifference(alone[1 + i % 2], trained[i])))
            .Where(p => p.Difference is not null)
            .Select(p => $"thread {p.i} ({p.Cores} core(s)): {p.Difference}")
            .ToList();
        Assert.True(problems.Count == 0, "trained at the same time as others, an instance differs from one trained alone:\n" + string.Join("\n", problems));
        Assert.Equal(3 * batches.Length, trained[0].Counters[0]);
    }

    [Fact]
    public void ForwardOnManyThreadsWithSeparateInstancesGivesTheSingleThreadedOutputs()
    {
        const int Threads = 8, Repetitions = 40, Batch = 48;
        // Trained weights and running statistics, so that every layer (batch norm included) matters.
        var source = Train(2, TrainingHelpers.SmallKerasBatches(3, 16, seed: 91));
        float[] input = TrainingHelpers.Uniform(new Random(92), Batch * SmallKeras.InputSize);
        var expected = new Dictionary<int, float[]>();
        foreach (int cores in new[] { 1, 2 })
        {
            var single = Copy(source, cores);
            expected[cores] = new float[Batch * SmallKeras.OutputSize];
            single.Forward(input, expected[cores]);
        }

        int[] mismatches = new int[Threads];
        OnThreads(Threads, i =>
        {
            int cores = 1 + i % 2;
            var network = Copy(source, cores);
            var output = new float[Batch * SmallKeras.OutputSize];
            for (int r = 0; r < Repetitions; r++)
            {
                output.AsSpan().Fill(float.NaN);
                network.Forward(input, output);
                if (!TrainingHelpers.BitwiseEqual<float>(expected[cores], output)) mismatches[i]++;
            }
        });
        Assert.True(mismatches.All(m => m == 0),
            $"outputs differing from the single-threaded run, per thread (of {Repetitions}): [{string.Join(", ", mismatches)}]");
    }

    private static SmallKeras Copy(SmallKeras source, int cores)
    {
        var copy = new SmallKeras(0) { MaxDegreeOfParallelism = cores };
        source.Parameters.CopyTo(copy.Parameters);
        source.Buffers.CopyTo(copy.Buffers);
        source.Counters.CopyTo(copy.Counters);
        return copy;
    }

    /// <summary>Counts how often each chunk runs; a chunk may start a job of its own (<see cref="Inner"/>).</summary>
    private sealed class CountingWork(int chunks, Func<int, CountingWork>? inner = null) : IParallelWork
    {
        public readonly int[] Runs = new int[chunks];
        public readonly List<CountingWork> Inner = new();

        public void Execute(int chunk)
        {
            Interlocked.Increment(ref Runs[chunk]);
            Thread.SpinWait(200 + 50 * chunk); // long enough for the pool's threads to take part
            if (inner is not null)
            {
                var work = inner(chunk);
                lock (Inner) Inner.Add(work);
                WorkerPool.Run(work, work.Runs.Length);
                Assert.All(work.Runs, r => Assert.Equal(1, r));
            }
        }
    }

    [Fact]
    public void ThePoolRunsEveryChunkExactlyOnceForCallersOnManyThreads()
    {
        const int Threads = 8, Jobs = 300;
        var finished = new List<CountingWork>[Threads];
        OnThreads(Threads, i =>
        {
            finished[i] = new List<CountingWork>();
            for (int j = 0; j < Jobs; j++)
            {
                var work = new CountingWork(2 + (i + j) % 8);
                WorkerPool.Run(work, work.Runs.Length);
                // Every chunk has run once by the time Run returns.
                Assert.True(work.Runs.All(r => r == 1), $"thread {i}, job {j}: chunk runs [{string.Join(", ", work.Runs)}]");
                finished[i].Add(work);
            }
        });
        // And none ran again afterwards (a worker still holding a finished job).
        var late = finished.SelectMany(f => f).Count(w => w.Runs.Any(r => r != 1));
        Assert.Equal(0, late);
    }

    [Fact]
    public void AJobStartedFromAChunkRunsOnItsCallerWithoutDisturbingTheRunningJob()
    {
        // The chunks of the outer job (some on the thread that owns the pool, some on its workers) each start a job
        // of their own. The pool is busy with the outer job, so the inner jobs run on their callers; neither the
        // outer job nor any inner job may lose, repeat or mix up a chunk.
        for (int round = 0; round < 50; round++)
        {
            var outer = new CountingWork(4, chunk => new CountingWork(3 + chunk));
            OnThreads(1, _ => WorkerPool.Run(outer, outer.Runs.Length));
            Assert.True(outer.Runs.All(r => r == 1), $"round {round}: outer chunk runs [{string.Join(", ", outer.Runs)}]");
            Assert.Equal(4, outer.Inner.Count);
            Assert.All(outer.Inner, w => Assert.All(w.Runs, r => Assert.Equal(1, r)));
        }
    }
}
