using System;
using System.Buffers;
using Unrolled.Inspection;

namespace Unrolled;

/// <summary>
/// Looking inside a network in inference mode: any layer's output (feature maps), the gradient of the network's
/// output with respect to its input (vector–Jacobian products, saliency maps, adversarial examples) or with respect
/// to a layer's output (Grad-CAM). Dropout is the identity and BatchNorm uses its running statistics, as in
/// <see cref="INetwork.Forward"/>.
/// </summary>
/// <remarks>
/// <para>These methods do not run the generated code: they are a reference interpreter of LAYERS.md over
/// <see cref="INetwork.Layers"/>, <see cref="INetwork.Tensors"/>, <see cref="INetwork.Parameters"/> and
/// <see cref="INetwork.Buffers"/>, one sample at a time on the calling thread, in float32 (vectorised with
/// <c>TensorPrimitives</c> where it is easy). The last layer's output agrees with <see cref="INetwork.Forward"/>
/// to float rounding (within 1e-7 relative in the tests), but it is one to two orders of magnitude slower than the
/// generated code: on LeNet5 (1×28×28), measured by InspectionTests.SpeedOnLeNet5 on a shared 2-core machine, a
/// forward pass took about 1.2 ms per image and a forward pass plus input gradient about 2.1 ms, against 0.014 ms for
/// the generated <see cref="INetwork.Forward"/> in the same run (under heavy load all three were 2–5× slower). Use <see cref="INetwork.Forward"/> for plain
/// inference.</para>
/// <para>Thread safety: the methods keep no state in the network (a resolved layer plan is cached per instance,
/// immutable) and take their scratch from <see cref="ArrayPool{T}.Shared"/>, so any number of threads may call
/// them on one network at the same time, as long as nothing writes its <see cref="INetwork.Parameters"/> or
/// <see cref="INetwork.Buffers"/> (training, loading weights) meanwhile. The span overloads allocate nothing once
/// the pool is warm; the array-returning ones allocate their result.</para>
/// <para>Batches: <c>input</c> holds one or more samples, <see cref="INetwork.InputSize"/> floats each, NCHW; every
/// per-sample result is laid out the same way, sample after sample. Samples never mix.</para>
/// <para>Layers are numbered as in <see cref="INetwork.Layers"/> (declaration order, from 0) or named as there
/// (<c>conv1</c>, <c>dense2</c>, an explicit <c>Name</c>). A layer's output is after its fused activation.</para>
/// </remarks>
/// <exception cref="NotSupportedException">Every method: the network does not describe its layers
/// (<see cref="INetwork.Layers"/> is empty, as for a hand-written <see cref="INetwork"/>) or its description is
/// inconsistent with its tensors.</exception>
public static class NetworkInspection
{
    // ------------------------------------------------------------------ layers

    /// <summary>The index in <see cref="INetwork.Layers"/> of the layer called <paramref name="layerName"/> (ordinal, case-sensitive).</summary>
    /// <exception cref="ArgumentException">No layer has that name (the message lists the names).</exception>
    public static int LayerIndex(this INetwork network, string layerName)
    {
        var plan = InspectionPlan.For(network);
        ArgumentNullException.ThrowIfNull(layerName);
        int index = Array.IndexOf(plan.Names, layerName);
        if (index < 0)
            throw new ArgumentException($"The network '{network.NetworkName}' has no layer named '{layerName}'; its layers are {string.Join(", ", plan.Names)}.", nameof(layerName));
        return index;
    }

    /// <summary>Every layer's output for every sample of <paramref name="input"/>: element i holds layer i's output
    /// (<c>Layers[i].Output.Size</c> floats per sample, sample after sample); the last is the network's output.</summary>
    /// <exception cref="ArgumentException"><paramref name="input"/> is empty or not a whole number of samples.</exception>
    public static float[][] LayerOutputs(this INetwork network, ReadOnlySpan<float> input)
    {
        var plan = InspectionPlan.For(network);
        int batch = Batch(plan, input);
        var results = new float[plan.Layers.Length][];
        for (int i = 0; i < results.Length; i++) results[i] = new float[batch * plan.Layers[i].Description.Output.Size];
        using var work = new Workspace(network, plan);
        for (int s = 0; s < batch; s++)
        {
            var sample = input.Slice(s * plan.InputSize, plan.InputSize);
            work.Forward(sample, plan.Layers.Length - 1);
            for (int i = 0; i < results.Length; i++)
            {
                int size = plan.Layers[i].Description.Output.Size;
                Interpreter.LayerOutput(plan, work.Activations, i).CopyTo(results[i].AsSpan(s * size, size));
            }
        }
        return results;
    }

    /// <summary>Writes the output of layer <paramref name="layer"/> for every sample of <paramref name="input"/> into
    /// <paramref name="output"/> (<c>Layers[layer].Output.Size</c> floats per sample). Only the layers up to it run.</summary>
    /// <exception cref="ArgumentException"><paramref name="input"/> is not a whole, positive number of samples, or
    /// <paramref name="output"/> is not exactly as long as the result.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="layer"/> is not an index of <see cref="INetwork.Layers"/>.</exception>
    public static void LayerOutput(this INetwork network, ReadOnlySpan<float> input, int layer, Span<float> output)
    {
        var plan = InspectionPlan.For(network);
        int batch = Batch(plan, input);
        CheckLayer(plan, layer, nameof(layer));
        int size = plan.Layers[layer].Description.Output.Size;
        CheckLength(output.Length, batch * size, nameof(output), plan, layer);
        using var work = new Workspace(network, plan);
        for (int s = 0; s < batch; s++)
        {
            work.Forward(input.Slice(s * plan.InputSize, plan.InputSize), layer);
            Interpreter.LayerOutput(plan, work.Activations, layer).CopyTo(output.Slice(s * size, size));
        }
    }

    /// <summary>As <see cref="LayerOutput(INetwork, ReadOnlySpan{float}, int, Span{float})"/>, the layer given by name.</summary>
    public static void LayerOutput(this INetwork network, ReadOnlySpan<float> input, string layerName, Span<float> output) =>
        network.LayerOutput(input, network.LayerIndex(layerName), output);

    /// <summary>The output of layer <paramref name="layer"/> for every sample of <paramref name="input"/>, in a new array.</summary>
    public static float[] LayerOutput(this INetwork network, ReadOnlySpan<float> input, int layer)
    {
        var plan = InspectionPlan.For(network);
        int batch = Batch(plan, input);
        CheckLayer(plan, layer, nameof(layer));
        var output = new float[batch * plan.Layers[layer].Description.Output.Size];
        network.LayerOutput(input, layer, output);
        return output;
    }

    /// <summary>The output of the layer called <paramref name="layerName"/> for every sample, in a new array.</summary>
    public static float[] LayerOutput(this INetwork network, ReadOnlySpan<float> input, string layerName) =>
        network.LayerOutput(input, network.LayerIndex(layerName));

    // ------------------------------------------------------------------ gradients

    /// <summary>
    /// The gradient with respect to the input of Σ outputGradient · output, per sample (a vector–Jacobian product
    /// through every layer, Softmax included): with a one-hot <paramref name="outputGradient"/> it is the gradient
    /// of that output; with the gradient of a loss with respect to the output it is the loss's input gradient
    /// (adversarial examples: FGSM takes its sign).
    /// </summary>
    /// <param name="network">The network.</param>
    /// <param name="input">One or more samples.</param>
    /// <param name="outputGradient"><see cref="INetwork.OutputSize"/> floats per sample.</param>
    /// <param name="inputGradient">Receives <see cref="INetwork.InputSize"/> floats per sample.</param>
    /// <remarks>ReLU's derivative at 0 is 0, max pooling routes to the first maximum of each window, as in
    /// training (LAYERS.md).</remarks>
    /// <exception cref="ArgumentException">A span's length does not match the batch of <paramref name="input"/>.</exception>
    public static void InputGradient(this INetwork network, ReadOnlySpan<float> input, ReadOnlySpan<float> outputGradient, Span<float> inputGradient) =>
        InputGradient(network, input, outputGradient, inputGradient, Span<float>.Empty);

    /// <summary>As <see cref="InputGradient(INetwork, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float})"/>, and
    /// writes the network's output (<see cref="INetwork.OutputSize"/> floats per sample) into <paramref name="output"/>,
    /// which may be empty to skip it.</summary>
    public static void InputGradient(this INetwork network, ReadOnlySpan<float> input, ReadOnlySpan<float> outputGradient,
        Span<float> inputGradient, Span<float> output)
    {
        var plan = InspectionPlan.For(network);
        int batch = Batch(plan, input);
        CheckLength(outputGradient.Length, batch * plan.OutputSize, nameof(outputGradient), "OutputSize floats per sample");
        CheckLength(inputGradient.Length, batch * plan.InputSize, nameof(inputGradient), "InputSize floats per sample");
        if (!output.IsEmpty) CheckLength(output.Length, batch * plan.OutputSize, nameof(output), "OutputSize floats per sample, or empty");
        int last = plan.Layers.Length - 1;
        using var work = new Workspace(network, plan);
        for (int s = 0; s < batch; s++)
        {
            var sample = input.Slice(s * plan.InputSize, plan.InputSize);
            work.Forward(sample, last);
            if (!output.IsEmpty) Interpreter.LayerOutput(plan, work.Activations, last).CopyTo(output.Slice(s * plan.OutputSize, plan.OutputSize));
            outputGradient.Slice(s * plan.OutputSize, plan.OutputSize).CopyTo(work.Seed);
            work.Backward(sample, last, -1).Slice(0, plan.InputSize).CopyTo(inputGradient.Slice(s * plan.InputSize, plan.InputSize));
        }
    }

    /// <summary>
    /// The gradient of Σ outputGradient · output with respect to the output of layer <paramref name="layer"/>
    /// (<c>Layers[layer].Output.Size</c> floats per sample, after its fused activation), as Grad-CAM needs; for the
    /// last layer it is <paramref name="outputGradient"/> itself.
    /// </summary>
    /// <exception cref="ArgumentException">A span's length does not match the batch of <paramref name="input"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="layer"/> is not an index of <see cref="INetwork.Layers"/>.</exception>
    public static void LayerGradient(this INetwork network, ReadOnlySpan<float> input, int layer, ReadOnlySpan<float> outputGradient, Span<float> layerGradient)
    {
        var plan = InspectionPlan.For(network);
        int batch = Batch(plan, input);
        CheckLayer(plan, layer, nameof(layer));
        int size = plan.Layers[layer].Description.Output.Size;
        CheckLength(outputGradient.Length, batch * plan.OutputSize, nameof(outputGradient), "OutputSize floats per sample");
        CheckLength(layerGradient.Length, batch * size, nameof(layerGradient), plan, layer);
        int last = plan.Layers.Length - 1;
        using var work = new Workspace(network, plan);
        for (int s = 0; s < batch; s++)
        {
            var sample = input.Slice(s * plan.InputSize, plan.InputSize);
            work.Forward(sample, last);
            outputGradient.Slice(s * plan.OutputSize, plan.OutputSize).CopyTo(work.Seed);
            work.Backward(sample, last, layer).Slice(0, size).CopyTo(layerGradient.Slice(s * size, size));
        }
    }

    /// <summary>As <see cref="LayerGradient(INetwork, ReadOnlySpan{float}, int, ReadOnlySpan{float}, Span{float})"/>, the layer given by name.</summary>
    public static void LayerGradient(this INetwork network, ReadOnlySpan<float> input, string layerName, ReadOnlySpan<float> outputGradient, Span<float> layerGradient) =>
        network.LayerGradient(input, network.LayerIndex(layerName), outputGradient, layerGradient);

    // ------------------------------------------------------------------ saliency

    /// <summary>
    /// Saliency maps: the gradient of class <paramref name="classIndex"/>'s score with respect to the input, for
    /// every sample (<see cref="INetwork.InputSize"/> floats per sample, signed; the usual picture is the maximum of
    /// its absolute value over the channels). The score is the network's output at that index, except that when
    /// the last layer is Softmax it is the logit before it (the score of Simonyan et al.; the probability's gradient
    /// also depends on every other class): use <see cref="InputGradient(INetwork, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float})"/>
    /// with a one-hot output gradient for the probability.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="classIndex"/> is not in [0, OutputSize).</exception>
    /// <exception cref="ArgumentException">A span's length does not match.</exception>
    public static void Saliency(this INetwork network, ReadOnlySpan<float> input, int classIndex, Span<float> saliency)
    {
        var plan = InspectionPlan.For(network);
        int batch = Batch(plan, input);
        CheckClass(plan, classIndex, nameof(classIndex));
        CheckLength(saliency.Length, batch * plan.InputSize, nameof(saliency), "InputSize floats per sample");
        using var work = new Workspace(network, plan);
        for (int s = 0; s < batch; s++) work.ScoreGradient(input, s, classIndex, -1, saliency);
    }

    /// <summary>As <see cref="Saliency(INetwork, ReadOnlySpan{float}, int, Span{float})"/>, with one class per sample.</summary>
    /// <exception cref="ArgumentException"><paramref name="classIndices"/> does not hold one class per sample.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A class is not in [0, OutputSize).</exception>
    public static void Saliency(this INetwork network, ReadOnlySpan<float> input, ReadOnlySpan<int> classIndices, Span<float> saliency)
    {
        var plan = InspectionPlan.For(network);
        int batch = Batch(plan, input);
        CheckLength(classIndices.Length, batch, nameof(classIndices), "one class per sample");
        for (int s = 0; s < batch; s++) CheckClass(plan, classIndices[s], nameof(classIndices));
        CheckLength(saliency.Length, batch * plan.InputSize, nameof(saliency), "InputSize floats per sample");
        using var work = new Workspace(network, plan);
        for (int s = 0; s < batch; s++) work.ScoreGradient(input, s, classIndices[s], -1, saliency);
    }

    /// <summary>The saliency map of class <paramref name="classIndex"/> for every sample, in a new array.</summary>
    public static float[] Saliency(this INetwork network, ReadOnlySpan<float> input, int classIndex)
    {
        var plan = InspectionPlan.For(network);
        var saliency = new float[Batch(plan, input) * plan.InputSize];
        network.Saliency(input, classIndex, saliency);
        return saliency;
    }

    /// <summary>The saliency map of each sample's winning class (the first maximum of its output), which is
    /// written into <paramref name="predictedClasses"/> (one per sample).</summary>
    /// <exception cref="ArgumentException">A span's length does not match.</exception>
    public static void SaliencyOfPrediction(this INetwork network, ReadOnlySpan<float> input, Span<float> saliency, Span<int> predictedClasses)
    {
        var plan = InspectionPlan.For(network);
        int batch = Batch(plan, input);
        CheckLength(saliency.Length, batch * plan.InputSize, nameof(saliency), "InputSize floats per sample");
        CheckLength(predictedClasses.Length, batch, nameof(predictedClasses), "one class per sample");
        using var work = new Workspace(network, plan);
        for (int s = 0; s < batch; s++)
        {
            var sample = input.Slice(s * plan.InputSize, plan.InputSize);
            int last = plan.Layers.Length - 1;
            work.Forward(sample, last);
            predictedClasses[s] = ArgMax(Interpreter.LayerOutput(plan, work.Activations, last));
            work.ScoreGradient(input, s, predictedClasses[s], -1, saliency);
        }
    }

    // ------------------------------------------------------------------ Grad-CAM

    /// <summary>
    /// Grad-CAM (Selvaraju et al.) on layer <paramref name="layer"/>, which must give a C×H×W image: with A the
    /// layer's output and α_c the mean over H×W of the gradient of the class score with respect to A_c, the map is
    /// ReLU(Σ_c α_c·A_c), H·W floats per sample at the layer's resolution (not upsampled, not normalised). The class
    /// score is as for <see cref="Saliency(INetwork, ReadOnlySpan{float}, int, Span{float})"/> (the logit when the
    /// last layer is Softmax).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="layer"/> or <paramref name="classIndex"/> out of range.</exception>
    /// <exception cref="ArgumentException">The layer's output is a vector, or <paramref name="map"/>'s length does not match.</exception>
    public static void GradCam(this INetwork network, ReadOnlySpan<float> input, int layer, int classIndex, Span<float> map)
    {
        var plan = InspectionPlan.For(network);
        int batch = Batch(plan, input);
        CheckLayer(plan, layer, nameof(layer));
        CheckClass(plan, classIndex, nameof(classIndex));
        var shape = plan.Layers[layer].Description.Output;
        if (shape.IsVector)
            throw new ArgumentException($"Layer {layer} ('{plan.Names[layer]}') gives a vector of {shape.C}; Grad-CAM needs a layer with a C×H×W output.", nameof(layer));
        if (layer > ScoreLayer(plan))
            throw new ArgumentOutOfRangeException(nameof(layer), layer, $"Layer {layer} is the final Softmax, after the class scores; Grad-CAM needs a layer before it.");
        int plane = shape.H * shape.W;
        CheckLength(map.Length, batch * plane, nameof(map), plan, layer, perSampleMap: true);
        using var work = new Workspace(network, plan);
        for (int s = 0; s < batch; s++)
        {
            var gradient = work.ScoreGradient(input, s, classIndex, layer, Span<float>.Empty);
            var activation = Interpreter.LayerOutput(plan, work.Activations, layer);
            var m = map.Slice(s * plane, plane);
            m.Clear();
            for (int c = 0; c < shape.C; c++)
            {
                float alpha = System.Numerics.Tensors.TensorPrimitives.Sum(gradient.Slice(c * plane, plane)) / plane;
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(activation.Slice(c * plane, plane), alpha, m, m);
            }
            System.Numerics.Tensors.TensorPrimitives.Max(m, 0f, m);
        }
    }

    /// <summary>Grad-CAM on the layer called <paramref name="layerName"/> for every sample, in a new array (H·W floats per sample).</summary>
    public static float[] GradCam(this INetwork network, ReadOnlySpan<float> input, string layerName, int classIndex)
    {
        var plan = InspectionPlan.For(network);
        int layer = network.LayerIndex(layerName);
        var shape = plan.Layers[layer].Description.Output;
        var map = new float[Batch(plan, input) * (shape.IsVector ? 1 : shape.H * shape.W)];
        network.GradCam(input, layer, classIndex, map);
        return map;
    }

    // ------------------------------------------------------------------ helpers

    /// <summary>The layer whose output holds the class scores: the last, or the one before a final Softmax (−1: the input).</summary>
    private static int ScoreLayer(InspectionPlan plan) =>
        plan.Layers[^1].Description.Type == LayerType.Softmax ? plan.Layers.Length - 2 : plan.Layers.Length - 1;

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    private static int Batch(InspectionPlan plan, ReadOnlySpan<float> input)
    {
        if (input.IsEmpty || input.Length % plan.InputSize != 0)
            throw new ArgumentException($"The input holds {input.Length} floats, which is not a positive multiple of InputSize = {plan.InputSize}.", nameof(input));
        return input.Length / plan.InputSize;
    }

    private static void CheckLayer(InspectionPlan plan, int layer, string name)
    {
        if ((uint)layer >= (uint)plan.Layers.Length)
            throw new ArgumentOutOfRangeException(name, layer, $"The network has {plan.Layers.Length} layers (indices 0 to {plan.Layers.Length - 1}).");
    }

    private static void CheckClass(InspectionPlan plan, int classIndex, string name)
    {
        if ((uint)classIndex >= (uint)plan.OutputSize)
            throw new ArgumentOutOfRangeException(name, classIndex, $"A class index must be in [0, {plan.OutputSize}).");
    }

    private static void CheckLength(int actual, int expected, string name, string what)
    {
        if (actual != expected)
            throw new ArgumentException($"{name} holds {actual} elements; it must hold {expected} ({what}).", name);
    }

    /// <summary>A length check against layer <paramref name="layer"/>'s output (or its H·W plane); the message is built only when it fails.</summary>
    private static void CheckLength(int actual, int expected, string name, InspectionPlan plan, int layer, bool perSampleMap = false)
    {
        if (actual != expected)
        {
            var shape = plan.Layers[layer].Description.Output;
            string what = perSampleMap ? $"{shape.H}×{shape.W} floats" : $"{shape} = {shape.Size} floats";
            throw new ArgumentException($"{name} holds {actual} elements; it must hold {expected} ({what} of layer {layer} '{plan.Names[layer]}' per sample).", name);
        }
    }

    /// <summary>One call's scratch, rented from the shared pool: every layer's output for one sample, two gradient
    /// buffers and the layers' scratch.</summary>
    private ref struct Workspace
    {
        private readonly InspectionPlan _plan;
        private readonly ReadOnlySpan<float> _parameters;
        private readonly ReadOnlySpan<float> _buffers;
        private float[]? _rented;
        public readonly Span<float> Activations;
        private readonly Span<float> _a, _b, _scratch;

        public Workspace(INetwork network, InspectionPlan plan)
        {
            _plan = plan;
            _parameters = network.Parameters;
            _buffers = network.Buffers;
            _rented = ArrayPool<float>.Shared.Rent(plan.ScratchLength);
            var all = _rented.AsSpan(0, plan.ScratchLength);
            Activations = all.Slice(0, plan.ActivationLength);
            _a = all.Slice(plan.ActivationLength, plan.MaxSize);
            _b = all.Slice(plan.ActivationLength + plan.MaxSize, plan.MaxSize);
            _scratch = all.Slice(plan.ActivationLength + 2 * plan.MaxSize, plan.LayerScratch);
        }

        /// <summary>Where the gradient to propagate is written before <see cref="Backward"/>.</summary>
        public readonly Span<float> Seed => _a;

        public readonly void Forward(ReadOnlySpan<float> sample, int last) =>
            Interpreter.Forward(_plan, _parameters, _buffers, sample, Activations, _scratch, last);

        public readonly Span<float> Backward(ReadOnlySpan<float> sample, int last, int stop) =>
            Interpreter.Backward(_plan, _parameters, _buffers, sample, Activations, _scratch, last, stop, _a, _b);

        /// <summary>Sample <paramref name="s"/>'s gradient of its class score with respect to the output of layer
        /// <paramref name="stop"/> (−1: the input), copied into <paramref name="destination"/> unless it is empty.</summary>
        public readonly Span<float> ScoreGradient(ReadOnlySpan<float> input, int s, int classIndex, int stop, Span<float> destination)
        {
            var sample = input.Slice(s * _plan.InputSize, _plan.InputSize);
            int score = ScoreLayer(_plan);
            int size = score < 0 ? _plan.InputSize : _plan.Layers[score].Description.Output.Size;
            if (score >= 0) Forward(sample, score);
            var seed = _a.Slice(0, size);
            seed.Clear();
            seed[classIndex] = 1f;
            int resultSize = stop < 0 ? _plan.InputSize : _plan.Layers[stop].Description.Output.Size;
            var result = Backward(sample, score, stop).Slice(0, resultSize);
            if (!destination.IsEmpty) result.CopyTo(destination.Slice(s * resultSize, resultSize));
            return result;
        }

        public void Dispose()
        {
            if (_rented != null) ArrayPool<float>.Shared.Return(_rented);
            _rented = null;
        }
    }
}
