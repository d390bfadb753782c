using System;
using System.Buffers;
using System.Numerics.Tensors;

namespace Unrolled;

/// <summary>
/// Training and evaluation written once for every <see cref="INetwork"/>: one optimizer step on a batch,
/// accuracy over a data set, and class predictions.
/// </summary>
public static class NetworkTraining
{
    /// <summary>The batch size <see cref="Evaluate"/> and <see cref="Predict(INetwork, ReadOnlySpan{float}, int)"/> use by default.</summary>
    public const int DefaultBatchSize = 256;

    /// <summary>
    /// One training step with the cross-entropy loss: computes the gradient of the batch's mean loss
    /// against integer <paramref name="labels"/> (<see cref="INetwork.ComputeGradients(ReadOnlySpan{float}, ReadOnlySpan{int})"/>),
    /// then lets <paramref name="optimizer"/> update <see cref="INetwork.Parameters"/> from <see cref="INetwork.Gradients"/>.
    /// </summary>
    /// <param name="network">The network to train.</param>
    /// <param name="input">The batch, <see cref="INetwork.InputSize"/> floats per sample.</param>
    /// <param name="labels">One class per sample.</param>
    /// <param name="optimizer">The optimizer; its first step sizes it to this network.</param>
    /// <remarks>
    /// When the loss or any gradient is NaN or infinite, the step is not applied and
    /// <see cref="TrainingDivergedException"/> is thrown: the optimizer is not called, and the batch-norm running
    /// statistics (<see cref="INetwork.Buffers"/>, <see cref="INetwork.Counters"/>) that the training-mode forward
    /// pass updated are put back, so the network and the optimizer are exactly as before the call. (Dropout masks
    /// are drawn per call, so the next step draws fresh ones, as after any call to ComputeGradients.)
    /// </remarks>
    /// <returns>The batch's mean loss before the update.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="network"/> or <paramref name="optimizer"/> is null.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="optimizer"/> was sized for another network.</exception>
    /// <exception cref="TrainingDivergedException">The loss or the gradient is NaN or infinite (a learning rate too
    /// large, or NaN or infinite inputs); the parameters, running statistics and optimizer are left as they were.</exception>
    public static float TrainStep(this INetwork network, ReadOnlySpan<float> input, ReadOnlySpan<int> labels, Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(optimizer);
        using var statistics = new RunningStatistics(network);
        float loss = network.ComputeGradients(input, labels);
        ApplyUnlessDiverged(network, optimizer, loss, statistics);
        return loss;
    }

    /// <summary>
    /// One training step with the mean squared error against <paramref name="targets"/>
    /// (<see cref="INetwork.ComputeGradients(ReadOnlySpan{float}, ReadOnlySpan{float})"/>), then an optimizer step.
    /// </summary>
    /// <param name="network">The network to train.</param>
    /// <param name="input">The batch, <see cref="INetwork.InputSize"/> floats per sample.</param>
    /// <param name="targets">The expected outputs, <see cref="INetwork.OutputSize"/> floats per sample.</param>
    /// <param name="optimizer">The optimizer; its first step sizes it to this network.</param>
    /// <remarks>A NaN or infinite loss or gradient is handled as by the cross-entropy overload: the step is not
    /// applied, the running statistics are put back and <see cref="TrainingDivergedException"/> is thrown.</remarks>
    /// <returns>The batch's mean loss before the update.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="network"/> or <paramref name="optimizer"/> is null.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="optimizer"/> was sized for another network.</exception>
    /// <exception cref="TrainingDivergedException">The loss or the gradient is NaN or infinite (a learning rate too
    /// large, or NaN or infinite inputs or targets); the parameters, running statistics and optimizer are left as they were.</exception>
    public static float TrainStep(this INetwork network, ReadOnlySpan<float> input, ReadOnlySpan<float> targets, Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(optimizer);
        using var statistics = new RunningStatistics(network);
        float loss = network.ComputeGradients(input, targets);
        ApplyUnlessDiverged(network, optimizer, loss, statistics);
        return loss;
    }

    /// <summary>Lets <paramref name="optimizer"/> take its step when the loss and every gradient are finite;
    /// otherwise puts the running statistics back and throws <see cref="TrainingDivergedException"/>.</summary>
    private static void ApplyUnlessDiverged(INetwork network, Optimizer optimizer, float loss, in RunningStatistics statistics)
    {
        Span<float> gradients = network.Gradients;
        if (!float.IsFinite(loss) || !TensorPrimitives.IsFiniteAll<float>(gradients))
        {
            statistics.Restore(network);
            throw new TrainingDivergedException(loss);
        }

        optimizer.Step(network.Parameters, gradients);
    }

    /// <summary>
    /// A copy of a network's batch-norm running statistics (<see cref="INetwork.Buffers"/> and
    /// <see cref="INetwork.Counters"/>) in arrays rented from the shared pools, taken before a training-mode
    /// forward pass updates them, so that a diverged step can put them back. Allocation-free in steady state;
    /// nothing is rented for a network without batch norm.
    /// </summary>
    private readonly ref struct RunningStatistics
    {
        private readonly float[]? _buffers;
        private readonly long[]? _counters;

        public RunningStatistics(INetwork network)
        {
            Span<float> buffers = network.Buffers;
            Span<long> counters = network.Counters;
            if (buffers.Length > 0)
            {
                _buffers = ArrayPool<float>.Shared.Rent(buffers.Length);
                buffers.CopyTo(_buffers);
            }

            if (counters.Length > 0)
            {
                _counters = ArrayPool<long>.Shared.Rent(counters.Length);
                counters.CopyTo(_counters);
            }
        }

        /// <summary>Writes the copy back into the network.</summary>
        public void Restore(INetwork network)
        {
            Span<float> buffers = network.Buffers;
            Span<long> counters = network.Counters;
            _buffers?.AsSpan(0, buffers.Length).CopyTo(buffers);
            _counters?.AsSpan(0, counters.Length).CopyTo(counters);
        }

        public void Dispose()
        {
            if (_buffers is not null)
            {
                ArrayPool<float>.Shared.Return(_buffers);
            }

            if (_counters is not null)
            {
                ArrayPool<long>.Shared.Return(_counters);
            }
        }
    }

    /// <summary>
    /// The fraction of samples whose predicted class (the index of the largest output, the first one on a
    /// tie, as <c>torch.argmax</c>) equals the label. Runs inference in batches of
    /// <paramref name="batchSize"/> samples through one reused output buffer.
    /// </summary>
    /// <param name="network">The network to evaluate.</param>
    /// <param name="inputs">The samples, <see cref="INetwork.InputSize"/> floats each.</param>
    /// <param name="labels">One class in [0, <see cref="INetwork.OutputSize"/>) per sample.</param>
    /// <param name="batchSize">Samples per call to <see cref="INetwork.Forward"/>, at least 1.</param>
    /// <returns>The accuracy, in [0, 1].</returns>
    /// <exception cref="ArgumentNullException"><paramref name="network"/> is null.</exception>
    /// <exception cref="ArgumentException">There are no samples, <paramref name="inputs"/> is not a whole number
    /// of samples, or the number of labels differs from the number of samples.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchSize"/> is below 1, or a label is not a class.</exception>
    public static float Evaluate(this INetwork network, ReadOnlySpan<float> inputs, ReadOnlySpan<int> labels, int batchSize = DefaultBatchSize)
    {
        int samples = CountSamples(network, inputs);
        if (labels.Length != samples)
        {
            throw new ArgumentException($"There are {labels.Length} labels for {samples} samples.", nameof(labels));
        }

        if (samples == 0)
        {
            throw new ArgumentException("Accuracy over no samples is undefined.", nameof(inputs));
        }

        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)network.OutputSize)
            {
                throw new ArgumentOutOfRangeException(nameof(labels), labels[i],
                    $"Label {i} is {labels[i]}, outside the network's {network.OutputSize} classes.");
            }
        }

        int[] predicted = ArrayPool<int>.Shared.Rent(samples);
        try
        {
            Span<int> classes = predicted.AsSpan(0, samples);
            PredictCore(network, inputs, classes, batchSize);
            int correct = 0;
            for (int i = 0; i < samples; i++)
            {
                if (classes[i] == labels[i])
                {
                    correct++;
                }
            }

            return (float)((double)correct / samples);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(predicted);
        }
    }

    /// <summary>The predicted class of every sample: the index of its largest output (the first on a tie).</summary>
    /// <param name="network">The network to run.</param>
    /// <param name="inputs">The samples, <see cref="INetwork.InputSize"/> floats each.</param>
    /// <param name="batchSize">Samples per call to <see cref="INetwork.Forward"/>, at least 1.</param>
    /// <returns>One class per sample.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="network"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="inputs"/> is not a whole number of samples.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchSize"/> is below 1.</exception>
    public static int[] Predict(this INetwork network, ReadOnlySpan<float> inputs, int batchSize = DefaultBatchSize)
    {
        int[] classes = new int[CountSamples(network, inputs)];
        PredictCore(network, inputs, classes, batchSize);
        return classes;
    }

    /// <summary>Writes the predicted class of every sample into <paramref name="classes"/>, one per sample.</summary>
    /// <param name="network">The network to run.</param>
    /// <param name="inputs">The samples, <see cref="INetwork.InputSize"/> floats each.</param>
    /// <param name="classes">Receives one class per sample; its length must be the number of samples.</param>
    /// <param name="batchSize">Samples per call to <see cref="INetwork.Forward"/>, at least 1.</param>
    /// <exception cref="ArgumentNullException"><paramref name="network"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="inputs"/> is not a whole number of samples, or
    /// <paramref name="classes"/> has another length than the number of samples.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchSize"/> is below 1.</exception>
    public static void Predict(this INetwork network, ReadOnlySpan<float> inputs, Span<int> classes, int batchSize = DefaultBatchSize)
    {
        int samples = CountSamples(network, inputs);
        if (classes.Length != samples)
        {
            throw new ArgumentException($"The destination holds {classes.Length} classes for {samples} samples.", nameof(classes));
        }

        PredictCore(network, inputs, classes, batchSize);
    }

    /// <summary>Checks the network and the input's length and returns the number of samples in it.</summary>
    private static int CountSamples(INetwork network, ReadOnlySpan<float> inputs)
    {
        ArgumentNullException.ThrowIfNull(network);
        int inputSize = network.InputSize;
        if (inputs.Length % inputSize != 0)
        {
            throw new ArgumentException(
                $"The inputs hold {inputs.Length} floats, not a whole number of samples of {inputSize}.", nameof(inputs));
        }

        return inputs.Length / inputSize;
    }

    /// <summary>Runs <see cref="INetwork.Forward"/> batch by batch through one pooled output buffer and takes
    /// the argmax of every sample's outputs. <paramref name="classes"/> holds exactly one entry per sample.</summary>
    private static void PredictCore(INetwork network, ReadOnlySpan<float> inputs, Span<int> classes, int batchSize)
    {
        if (batchSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "The batch size must be at least 1.");
        }

        int samples = classes.Length;
        if (samples == 0)
        {
            return;
        }

        int inputSize = network.InputSize;
        int outputSize = network.OutputSize;
        int batch = Math.Min(batchSize, samples);
        float[] output = ArrayPool<float>.Shared.Rent(checked(batch * outputSize));
        try
        {
            for (int start = 0; start < samples; start += batch)
            {
                int count = Math.Min(batch, samples - start);
                Span<float> outputs = output.AsSpan(0, count * outputSize);
                network.Forward(inputs.Slice(start * inputSize, count * inputSize), outputs);
                for (int s = 0; s < count; s++)
                {
                    classes[start + s] = TensorPrimitives.IndexOfMax(outputs.Slice(s * outputSize, outputSize));
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(output);
        }
    }
}
