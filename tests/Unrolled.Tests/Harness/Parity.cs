using System;
using System.Collections.Generic;
using System.Linq;
using Unrolled.Tests.Reference;

namespace Unrolled.Tests.Harness;

/// <summary>
/// Compares a generated network with the naive double-precision reference.
///
/// The error metric, used throughout: max_i |actual_i − expected_i| / max(floor, max_i |expected_i|).
/// With floor = 1 (forward outputs) it is an absolute error for outputs of magnitude up to 1 and a
/// relative one beyond; gradients use a small floor so that their (often small) scale is respected.
/// Both sides see exactly the same values: parameters, buffers and inputs are drawn in double and
/// rounded to float before either side uses them.
/// </summary>
public static class Parity
{
    /// <summary>Allowed forward error (float32 network against double reference).</summary>
    public const double ForwardTolerance = 1e-5;
    /// <summary>Allowed gradient error (float32 backward against double reference).</summary>
    public const double GradientTolerance = 1e-4;
    /// <summary>Gradients smaller than this overall are compared absolutely.</summary>
    public const double GradientFloor = 1e-3;

    public static double[] RoundToFloat(double[] values) => values.Select(v => (double)(float)v).ToArray();

    public static float[] ToFloat(double[] values) => values.Select(v => (float)v).ToArray();

    /// <summary>The metric above; also returns where the largest difference is.</summary>
    public static double Error(ReadOnlySpan<float> actual, double[] expected, double floor, out int worst)
    {
        var widened = new double[actual.Length];
        for (int i = 0; i < actual.Length; i++) widened[i] = actual[i];
        return Error(widened, expected, floor, out worst);
    }

    /// <summary>The metric above for two double arrays (as for the reference against finite differences).</summary>
    public static double Error(double[] actual, double[] expected, double floor, out int worst)
    {
        if (actual.Length != expected.Length) throw new ArgumentException($"length {actual.Length} ≠ {expected.Length}");
        double scale = floor, difference = 0;
        worst = -1;
        for (int i = 0; i < expected.Length; i++) scale = Math.Max(scale, Math.Abs(expected[i]));
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs(actual[i] - expected[i]);
            if (double.IsNaN(d)) { worst = i; return double.NaN; }
            if (d > difference) { difference = d; worst = i; }
        }
        return difference / scale;
    }

    /// <summary>Which tensor (state_dict name and index inside it) a flat parameter index falls in.</summary>
    public static string Locate(NaiveNetwork reference, TensorKind kind, int index)
    {
        foreach (var t in reference.Tensors.Where(t => t.Kind == kind))
            if (index >= t.Offset && index < t.Offset + t.Length)
                return $"{t.Name}[{index - t.Offset}]";
        return $"#{index}";
    }

    /// <summary>Shape and layout facts that must hold before values can be compared.</summary>
    public static string? LayoutMismatch(INetwork network, NaiveNetwork reference)
    {
        var problems = new List<string>();
        if (network.InputSize != reference.InputSize) problems.Add($"InputSize {network.InputSize}, expected {reference.InputSize}");
        if (network.OutputSize != reference.OutputSize) problems.Add($"OutputSize {network.OutputSize}, expected {reference.OutputSize}");
        if (network.ParameterCount != reference.ParameterCount) problems.Add($"ParameterCount {network.ParameterCount}, expected {reference.ParameterCount}");
        if (network.Parameters.Length != reference.ParameterCount) problems.Add($"Parameters.Length {network.Parameters.Length}, expected {reference.ParameterCount}");
        if (network.Gradients.Length != reference.ParameterCount) problems.Add($"Gradients.Length {network.Gradients.Length}, expected {reference.ParameterCount}");
        if (network.Buffers.Length != reference.BufferCount) problems.Add($"Buffers.Length {network.Buffers.Length}, expected {reference.BufferCount}");
        if (network.Counters.Length != reference.CounterCount) problems.Add($"Counters.Length {network.Counters.Length}, expected {reference.CounterCount}");
        if (network.Loss != reference.Decl.Loss) problems.Add($"Loss {network.Loss}, expected {reference.Decl.Loss}");
        string actualTensors = string.Join(", ", network.Tensors.Select(t => $"{t.Name}:{t.Kind}[{string.Join("x", t.Shape)}]@{t.Offset}+{t.Length}"));
        string expectedTensors = string.Join(", ", reference.Tensors.Select(t => $"{t.Name}:{t.Kind}[{string.Join("x", t.Shape)}]@{t.Offset}+{t.Length}"));
        if (actualTensors != expectedTensors) problems.Add($"Tensors\n      got      {actualTensors}\n      expected {expectedTensors}");
        return problems.Count == 0 ? null : string.Join("; ", problems);
    }

    /// <summary>Random inputs in [−1, 1], already rounded to float.</summary>
    public static double[] RandomInput(Random rng, int count) =>
        Enumerable.Range(0, count).Select(_ => (double)(float)(2 * rng.NextDouble() - 1)).ToArray();

    /// <summary>Loads random parameters and buffers (rounded to float) into the network and returns them.</summary>
    public static (double[] Parameters, double[] Buffers) LoadRandomState(INetwork network, NaiveNetwork reference, Random rng)
    {
        var parameters = RoundToFloat(reference.RandomParameters(rng));
        var buffers = RoundToFloat(reference.RandomBuffers(rng));
        ToFloat(parameters).CopyTo(network.Parameters);
        ToFloat(buffers).CopyTo(network.Buffers);
        return (parameters, buffers);
    }

    /// <summary>Inference forward at <paramref name="batch"/> against the reference; null when within tolerance.</summary>
    public static string? ForwardMismatch(INetwork network, NaiveNetwork reference, int batch, int seed,
        double tolerance = ForwardTolerance)
    {
        if (LayoutMismatch(network, reference) is { } layout) return "layout: " + layout;
        var rng = new Random(seed);
        var (parameters, buffers) = LoadRandomState(network, reference, rng);
        var input = RandomInput(rng, batch * reference.InputSize);
        var output = new float[batch * reference.OutputSize];
        try
        {
            network.Forward(ToFloat(input), output);
        }
        catch (Exception e)
        {
            return $"batch {batch}: Forward threw {e.GetType().Name}: {e.Message}";
        }
        var expected = reference.Forward(parameters, buffers, input);
        double error = Error(output, expected, 1.0, out int worst);
        if (error <= tolerance) return null;
        return $"batch {batch}: forward error {error:g3} > {tolerance:g1}; worst at sample {worst / reference.OutputSize}, " +
               $"output {worst % reference.OutputSize}: got {output[worst]:g9}, expected {expected[worst]:g9}";
    }

    /// <summary>Training step (ComputeGradients) at <paramref name="batch"/> with random values against the
    /// reference's analytic backward. Dropout layers must have p = 0 (the generated masks are internal).
    /// Null when within tolerance.</summary>
    public static string? GradientMismatch(INetwork network, NaiveNetwork reference, int batch, int seed,
        double tolerance = GradientTolerance)
    {
        if (LayoutMismatch(network, reference) is { } layout) return "layout: " + layout;
        var rng = new Random(seed);
        var parameters = RoundToFloat(reference.RandomParameters(rng));
        var buffers = RoundToFloat(reference.RandomBuffers(rng));
        var input = RandomInput(rng, batch * reference.InputSize);
        Targets targets = reference.Decl.Loss == Loss.CrossEntropy
            ? Targets.Of(Enumerable.Range(0, batch).Select(_ => rng.Next(reference.OutputSize)).ToArray())
            : Targets.Of(RandomInput(rng, batch * reference.OutputSize));
        return GradientMismatch(network, reference, parameters, buffers, input, targets, tolerance);
    }

    /// <summary>Two training steps (ComputeGradients) on the given values against the reference's analytic
    /// backward: each step's loss and gradients (the second must not accumulate onto the first), the batch-norm
    /// running statistics and counters after each step, and finally an inference forward with the updated
    /// statistics (training must leave nothing behind that changes inference).</summary>
    public static string? GradientMismatch(INetwork network, NaiveNetwork reference, double[] parameters, double[] buffers,
        double[] input, Targets targets, double tolerance = GradientTolerance)
    {
        if (LayoutMismatch(network, reference) is { } layout) return "layout: " + layout;
        int batch = input.Length / reference.InputSize;
        ToFloat(parameters).CopyTo(network.Parameters);
        ToFloat(buffers).CopyTo(network.Buffers);
        network.Counters.Clear();
        var problems = new List<string>();
        var currentBuffers = buffers;

        for (int step = 1; step <= 2 && problems.Count == 0; step++)
        {
            network.Gradients.Fill(float.NaN); // every gradient must be written
            float loss;
            try
            {
                loss = targets.Labels != null
                    ? network.ComputeGradients(ToFloat(input), targets.Labels)
                    : network.ComputeGradients(ToFloat(input), ToFloat(targets.Values!));
            }
            catch (Exception e)
            {
                return $"batch {batch}, step {step}: ComputeGradients threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}";
            }
            var expected = reference.Backward(parameters, currentBuffers, input, targets);
            currentBuffers = expected.UpdatedBuffers;
            string at = $"step {step}: ";

            double lossError = Math.Abs(loss - expected.Loss) / Math.Max(1, Math.Abs(expected.Loss));
            if (!(lossError <= tolerance)) problems.Add($"{at}loss {loss:g9}, expected {expected.Loss:g9}");

            double error = Error(network.Gradients, expected.Gradients, GradientFloor, out int worst);
            double allowed = error <= tolerance ? tolerance
                : ConditionedTolerance(reference, parameters, currentBuffers, input, targets, expected.Gradients, tolerance);
            if (!(error <= allowed))
                problems.Add($"{at}gradient error {error:g3} (tolerance {allowed:g2}); " +
                             $"worst {Locate(reference, TensorKind.Parameter, worst)}: " +
                             $"got {network.Gradients[worst]:g9}, expected {expected.Gradients[worst]:g9}; " +
                             $"per tensor: {PerTensorErrors(reference, network.Gradients, expected.Gradients)}");

            if (reference.BufferCount > 0 && currentBuffers.All(double.IsFinite))
            {
                double bufferError = Error(network.Buffers, currentBuffers, 1.0, out int worstBuffer);
                if (!(bufferError <= tolerance))
                    problems.Add($"{at}running statistics: error {bufferError:g3} at {Locate(reference, TensorKind.Buffer, worstBuffer)}: " +
                                 $"got {network.Buffers[worstBuffer]:g9}, expected {currentBuffers[worstBuffer]:g9}");
            }
            for (int i = 0; i < network.Counters.Length; i++)
                if (network.Counters[i] != step) problems.Add($"{at}num_batches_tracked #{i} is {network.Counters[i]}, expected {step}");
        }

        if (problems.Count == 0 && currentBuffers.All(double.IsFinite))
        {
            // Inference after training, with whatever running statistics the network now holds.
            var actualBuffers = network.Buffers.ToArray().Select(v => (double)v).ToArray();
            var output = new float[batch * reference.OutputSize];
            network.Forward(ToFloat(input), output);
            var expected = reference.Forward(parameters, actualBuffers, input);
            double error = Error(output, expected, 1.0, out int worst);
            if (!(error <= ForwardTolerance * 10))
                problems.Add($"inference after training: error {error:g3} at output {worst}: got {output[worst]:g9}, expected {expected[worst]:g9}");
        }

        return problems.Count == 0 ? null : $"batch {batch}: " + string.Join("; ", problems);
    }

    /// <summary>
    /// The gradient tolerance for this network at these values. Most networks get <paramref name="tolerance"/>;
    /// ill-conditioned ones, where float32 arithmetic alone moves the gradient further (batch norm over a few
    /// nearly equal values, where x − μ cancels, feeding a dense layer whose inputs are nearly constant, so that
    /// Σ wᵢ·dxᵢ cancels again), get the room float arithmetic needs. That room is measured, not guessed: the
    /// reference gradient is recomputed twice with every parameter, input and intermediate value (each layer's
    /// output, forward and backward) moved by a random relative ulp, and the larger change is multiplied by 100.
    /// The factor is empirical: float elementwise functions are accurate to a few ulps, and formulas such as batch
    /// norm's backward cancel inside, where the per-output noise does not reach; 100 covers every float-only
    /// difference seen over some thousand random networks. A wrong formula still shows as an error of order one.
    /// </summary>
    public static double ConditionedTolerance(NaiveNetwork reference, double[] parameters, double[] buffers, double[] input,
        Targets targets, double[] gradients, double tolerance)
    {
        var noise = new Random(12345);
        double Nudge(double v) => v * (1 + (2 * noise.NextDouble() - 1) * NaiveNetwork.FloatUlp);
        double sensitivity = 0;
        for (int trial = 0; trial < 2; trial++)
        {
            var nudged = reference.Backward(parameters.Select(Nudge).ToArray(), buffers, input.Select(Nudge).ToArray(), targets,
                roundingNoise: noise);
            sensitivity = Math.Max(sensitivity, Error(nudged.Gradients, gradients, GradientFloor, out _));
        }
        return Math.Max(tolerance, 100 * sensitivity);
    }

    /// <summary>The error of each parameter tensor, for locating a gradient mismatch.</summary>
    private static string PerTensorErrors(NaiveNetwork reference, ReadOnlySpan<float> actual, double[] expected)
    {
        var parts = new List<string>();
        foreach (var t in reference.Tensors.Where(t => t.Kind == TensorKind.Parameter))
        {
            double e = Error(actual.Slice(t.Offset, t.Length), expected[t.Offset..(t.Offset + t.Length)], GradientFloor, out _);
            parts.Add($"{t.Name} {e:g2}");
        }
        return string.Join(", ", parts);
    }
}
