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
    /// <returns>The batch's mean loss before the update.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="network"/> or <paramref name="optimizer"/> is null.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="optimizer"/> was sized for another network.</exception>
    public static float TrainStep(this INetwork network, ReadOnlySpan<float> input, ReadOnlySpan<int> labels, Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(optimizer);
        float loss = network.ComputeGradients(input, labels);
        optimizer.Step(network.Parameters, network.Gradients);
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
    /// <returns>The batch's mean loss before the update.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="network"/> or <paramref name="optimizer"/> is null.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="optimizer"/> was sized for another network.</exception>
    public static float TrainStep(this INetwork network, ReadOnlySpan<float> input, ReadOnlySpan<float> targets, Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(optimizer);
        float loss = network.ComputeGradients(input, targets);
        optimizer.Step(network.Parameters, network.Gradients);
        return loss;
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
