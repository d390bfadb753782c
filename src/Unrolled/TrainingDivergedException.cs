using System;
using System.Globalization;

namespace Unrolled;

/// <summary>
/// Thrown by <see cref="NetworkTraining.TrainStep(INetwork, ReadOnlySpan{float}, ReadOnlySpan{int}, Optimizer)"/>
/// and its mean-squared-error overload when a batch's loss or gradient is NaN or infinite. The step is not
/// applied: the parameters, the batch-norm running statistics and counters, and the optimizer's state and step
/// count are exactly as they were before the call, so training can go on from there (with a smaller learning
/// rate, or without the offending batch).
/// </summary>
/// <remarks>
/// The usual causes are a learning rate so large that the weights grow until the forward pass overflows, and
/// NaN or infinite values in the inputs or targets (which <see cref="INetwork.Forward"/> does not check).
/// </remarks>
public sealed class TrainingDivergedException : Exception
{
    /// <summary>Creates the exception for a step whose loss was <paramref name="loss"/>.</summary>
    /// <param name="loss">The batch's mean loss, NaN or infinite, or finite when only the gradient was not.</param>
    public TrainingDivergedException(float loss)
        : base(FormatMessage(loss))
    {
        Loss = loss;
    }

    /// <summary>The batch's mean loss: NaN or infinite, or a finite value when only the gradient was not finite.</summary>
    public float Loss { get; }

    private static string FormatMessage(float loss)
    {
        string what = float.IsFinite(loss)
            ? $"the loss is {loss.ToString("G9", CultureInfo.InvariantCulture)} but the gradient holds NaN or infinite values"
            : $"the loss is {loss.ToString(CultureInfo.InvariantCulture)}";
        return $"Training diverged: {what}. The step was not applied (the parameters, batch-norm statistics and " +
               "optimizer state are as before it). Try a smaller learning rate, and check the inputs and targets for NaN or infinite values.";
    }
}
