using System;
using System.Collections.Generic;

namespace Unrolled;

/// <summary>What a stored tensor of a network is.</summary>
public enum TensorKind
{
    /// <summary>A trainable float32 tensor, held in <see cref="INetwork.Parameters"/>.</summary>
    Parameter = 0,
    /// <summary>A float32 buffer (batch-norm running statistics), held in <see cref="INetwork.Buffers"/>.</summary>
    Buffer = 1,
    /// <summary>An int64 scalar counter (batch-norm num_batches_tracked), held in <see cref="INetwork.Counters"/>.</summary>
    Counter = 2,
}

/// <summary>One named tensor of a network: its PyTorch state_dict key, shape, and where its values live.</summary>
/// <param name="Name">The state_dict key, e.g. <c>conv1.weight</c>.</param>
/// <param name="Shape">The PyTorch shape; empty for a scalar.</param>
/// <param name="Kind">Which span holds the values.</param>
/// <param name="Offset">The first element in that span.</param>
/// <param name="Length">The number of elements (the product of the shape; 1 for a scalar).</param>
public sealed record TensorInfo(string Name, IReadOnlyList<int> Shape, TensorKind Kind, int Offset, int Length);

/// <summary>
/// Implemented by every class the generator compiles from a <see cref="NetworkAttribute"/> declaration,
/// so that training loops, evaluation and weight files are written once for all networks.
/// One instance is not thread-safe: use one instance per thread. Separate instances are independent and may
/// train or run inference on separate threads at the same time, with bit for bit the results each gives alone.
/// </summary>
public interface INetwork
{
    /// <summary>The declaring class's name (written into weight files' metadata).</summary>
    string NetworkName { get; }
    /// <summary>Floats per input sample (C·H·W).</summary>
    int InputSize { get; }
    /// <summary>Floats per output sample.</summary>
    int OutputSize { get; }
    /// <summary>Number of trainable parameters.</summary>
    int ParameterCount { get; }
    /// <summary>The declared loss.</summary>
    Loss Loss { get; }
    /// <summary>All trainable parameters, contiguous, in declaration order, weight before bias, PyTorch layouts.</summary>
    Span<float> Parameters { get; }
    /// <summary>The gradient of the last batch's mean loss, laid out like <see cref="Parameters"/>.</summary>
    Span<float> Gradients { get; }
    /// <summary>Float buffers that are not trained (batch-norm running mean and variance).</summary>
    Span<float> Buffers { get; }
    /// <summary>Int64 counters (batch-norm num_batches_tracked).</summary>
    Span<long> Counters { get; }
    /// <summary>Every stored tensor with its state_dict name, in declaration order.</summary>
    IReadOnlyList<TensorInfo> Tensors { get; }
    /// <summary>Every layer as the generator resolved it (shapes, windows, explicit padding), in declaration order;
    /// empty for an implementation that does not describe its structure (then it cannot be exported to ONNX).</summary>
    IReadOnlyList<LayerDescription> Layers => Array.Empty<LayerDescription>();
    /// <summary>What the network's dropout masks are drawn from: the seed it was created with and the training steps it
    /// has taken. A checkpoint saves it and a resume restores it, so that dropout continues with the masks an
    /// uninterrupted run would draw (bit for bit). Networks without dropout compute nothing from it; a hand-written
    /// network that does not keep one returns the default and ignores a set.</summary>
    NetworkRandomState RandomState { get => default; set { } }
    /// <summary>The number of cores training and batched inference use; all cores by default.</summary>
    int MaxDegreeOfParallelism { get; set; }
    /// <summary>Inference: writes OutputSize floats per sample. The batch is input.Length / InputSize.</summary>
    /// <remarks>
    /// The input is not checked for NaN or infinite values: they are computed with like any other value and
    /// throw nothing. They affect only the outputs of their own sample (inference never mixes samples), which
    /// become meaningless, as a rule NaN; NaN passes through every layer as in PyTorch (ReLU and max pooling keep
    /// it), but a saturating activation may turn an infinity into a finite value. Check untrusted inputs with
    /// <c>TensorPrimitives.IsFiniteAll</c> when that matters.
    /// </remarks>
    void Forward(ReadOnlySpan<float> input, Span<float> output);
    /// <summary>Training-mode forward, cross-entropy loss against integer labels, backward. Overwrites
    /// <see cref="Gradients"/> with the gradient of the batch's mean loss and returns that loss.</summary>
    /// <remarks>Updates the batch-norm running statistics (<see cref="Buffers"/>, <see cref="Counters"/>) and does
    /// not check for NaN or infinite values: a batch holding one as a rule gives a NaN or infinite loss or gradient (batch
    /// norm spreads it over the batch). <see cref="NetworkTraining.TrainStep(INetwork, ReadOnlySpan{float}, ReadOnlySpan{int}, Optimizer)"/>
    /// refuses such a step with <see cref="TrainingDivergedException"/> and puts the running statistics back.</remarks>
    float ComputeGradients(ReadOnlySpan<float> input, ReadOnlySpan<int> labels);
    /// <summary>Training-mode forward, mean squared error against targets (OutputSize per sample), backward.</summary>
    /// <remarks>As the cross-entropy overload: the running statistics are updated and NaN or infinite inputs or
    /// targets are not checked here, but refused by <see cref="NetworkTraining.TrainStep(INetwork, ReadOnlySpan{float}, ReadOnlySpan{float}, Optimizer)"/>.</remarks>
    float ComputeGradients(ReadOnlySpan<float> input, ReadOnlySpan<float> targets);
}

/// <summary>The state of a network's random streams in training (<see cref="INetwork.RandomState"/>).</summary>
/// <param name="Seed">The seed the network was constructed with (dropout masks and initial weights derive from it).</param>
/// <param name="TrainingSteps">Training steps taken: each step's dropout masks are drawn from the seed and this count.</param>
public readonly record struct NetworkRandomState(ulong Seed, long TrainingSteps);
