using System;

namespace Unrolled;

/// <summary>
/// A learning rate as a function of the epoch, counted from 0: <c>Rate(0)</c> is the rate of the first
/// epoch. Apply it once at the start of every epoch, before that epoch's steps:
/// <code>
/// for (int epoch = 0; epoch &lt; epochs; epoch++)
/// {
///     schedule.Apply(optimizer, epoch);   // or: optimizer.LearningRate = schedule.Rate(epoch);
///     ...train one epoch...
/// }
/// </code>
/// This is PyTorch's convention, where a scheduler's <c>step()</c> at the end of epoch e sets the rate of
/// epoch e + 1. The factories compose: <c>Warmup(Cosine(0.1f, 90), 5)</c>. A schedule holds no state,
/// so Rate may be called for any epoch in any order. To schedule by step instead of by epoch, pass the
/// step index and give the lengths in steps.
/// </summary>
public abstract class LearningRateSchedule
{
    /// <summary>The learning rate for <paramref name="epoch"/> (counted from 0).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="epoch"/> is negative.</exception>
    public float Rate(int epoch)
    {
        if (epoch < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(epoch), epoch, "Epochs are counted from 0.");
        }

        return RateCore(epoch);
    }

    /// <summary>Sets <paramref name="optimizer"/>'s learning rate to <see cref="Rate"/>(<paramref name="epoch"/>).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="optimizer"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="epoch"/> is negative.</exception>
    public void Apply(Optimizer optimizer, int epoch)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        optimizer.LearningRate = Rate(epoch);
    }

    /// <summary>The rate for a non-negative epoch; implementations return a finite non-negative number.</summary>
    protected abstract float RateCore(int epoch);

    /// <summary>The same rate every epoch.</summary>
    /// <param name="learningRate">The rate, finite and non-negative.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="learningRate"/> is negative or not finite.</exception>
    public static LearningRateSchedule Constant(float learningRate)
    {
        Optimizer.RequireNonNegative(learningRate, nameof(learningRate));
        return new ConstantSchedule(learningRate);
    }

    /// <summary>PyTorch <c>StepLR</c>: lr · γ^floor(epoch / stepSize), the rate multiplied by
    /// <paramref name="gamma"/> every <paramref name="stepSize"/> epochs.</summary>
    /// <param name="learningRate">The initial rate, finite and non-negative.</param>
    /// <param name="stepSize">Epochs between decays, at least 1.</param>
    /// <param name="gamma">The factor applied at each decay, in (0, 1] for a decay (any finite positive value is accepted).</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is outside its range.</exception>
    public static LearningRateSchedule StepDecay(float learningRate, int stepSize, float gamma = 0.1f)
    {
        Optimizer.RequireNonNegative(learningRate, nameof(learningRate));
        if (stepSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(stepSize), stepSize, "The step size must be at least 1 epoch.");
        }

        RequirePositive(gamma, nameof(gamma));
        return new StepDecaySchedule(learningRate, stepSize, gamma);
    }

    /// <summary>Exponential decay (PyTorch <c>ExponentialLR</c>): lr · γ^epoch.</summary>
    /// <param name="learningRate">The initial rate, finite and non-negative.</param>
    /// <param name="gamma">The factor applied every epoch, finite and positive.</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is outside its range.</exception>
    public static LearningRateSchedule Exponential(float learningRate, float gamma)
    {
        Optimizer.RequireNonNegative(learningRate, nameof(learningRate));
        RequirePositive(gamma, nameof(gamma));
        return new ExponentialSchedule(learningRate, gamma);
    }

    /// <summary>
    /// Cosine annealing, PyTorch <c>CosineAnnealingLR</c>'s closed form:
    /// η = η_min + (η_max − η_min) · (1 + cos(π · epoch / totalEpochs)) / 2, from
    /// <paramref name="learningRate"/> at epoch 0 down to <paramref name="minLearningRate"/> at epoch
    /// <paramref name="totalEpochs"/>. As in PyTorch, the formula is periodic: past
    /// <paramref name="totalEpochs"/> the rate climbs back up.
    /// </summary>
    /// <param name="learningRate">η_max, finite and non-negative.</param>
    /// <param name="totalEpochs">T_max, the epochs of the half period, at least 1.</param>
    /// <param name="minLearningRate">η_min, finite, in [0, <paramref name="learningRate"/>].</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is outside its range.</exception>
    public static LearningRateSchedule Cosine(float learningRate, int totalEpochs, float minLearningRate = 0)
    {
        Optimizer.RequireNonNegative(learningRate, nameof(learningRate));
        if (totalEpochs < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(totalEpochs), totalEpochs, "The schedule must last at least 1 epoch.");
        }

        Optimizer.RequireNonNegative(minLearningRate, nameof(minLearningRate));
        if (minLearningRate > learningRate)
        {
            throw new ArgumentOutOfRangeException(nameof(minLearningRate), minLearningRate,
                $"The minimum rate must not exceed the initial rate {learningRate}.");
        }

        return new CosineSchedule(learningRate, totalEpochs, minLearningRate);
    }

    /// <summary>
    /// A linear warm-up before <paramref name="schedule"/>: epoch e &lt; W runs at
    /// schedule.Rate(0) · (e + 1) / W, reaching the full rate on the last warm-up epoch; from epoch W on,
    /// the rate is schedule.Rate(e − W), so the wrapped schedule starts afresh after the warm-up (a cosine
    /// over N epochs still decays over N epochs).
    /// </summary>
    /// <param name="schedule">The schedule that follows the warm-up.</param>
    /// <param name="warmupEpochs">W, the warm-up's length in epochs; 0 returns <paramref name="schedule"/> itself.</param>
    /// <exception cref="ArgumentNullException"><paramref name="schedule"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="warmupEpochs"/> is negative.</exception>
    public static LearningRateSchedule Warmup(LearningRateSchedule schedule, int warmupEpochs)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        if (warmupEpochs < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(warmupEpochs), warmupEpochs, "The warm-up cannot last a negative number of epochs.");
        }

        return warmupEpochs == 0 ? schedule : new WarmupSchedule(schedule, warmupEpochs);
    }

    private static void RequirePositive(float value, string name)
    {
        if (!(value > 0) || float.IsPositiveInfinity(value))
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be a finite number greater than 0.");
        }
    }

    // The schedules compute in double and round once, so long runs of decays do not accumulate float error.
    // A γ above 1 grows without bound; such rates are capped at float.MaxValue so that they stay finite.

    private sealed class ConstantSchedule(float learningRate) : LearningRateSchedule
    {
        protected override float RateCore(int epoch) => learningRate;

        public override string ToString() => $"Constant({learningRate})";
    }

    private sealed class StepDecaySchedule(float learningRate, int stepSize, float gamma) : LearningRateSchedule
    {
        protected override float RateCore(int epoch) =>
            (float)Math.Min(learningRate * Math.Pow(gamma, epoch / stepSize), float.MaxValue);

        public override string ToString() => $"StepDecay({learningRate}, ×{gamma} every {stepSize} epochs)";
    }

    private sealed class ExponentialSchedule(float learningRate, float gamma) : LearningRateSchedule
    {
        protected override float RateCore(int epoch) =>
            (float)Math.Min(learningRate * Math.Pow(gamma, epoch), float.MaxValue);

        public override string ToString() => $"Exponential({learningRate}, ×{gamma} every epoch)";
    }

    private sealed class CosineSchedule(float learningRate, int totalEpochs, float minLearningRate) : LearningRateSchedule
    {
        protected override float RateCore(int epoch) =>
            (float)(minLearningRate + (learningRate - (double)minLearningRate) * (1 + Math.Cos(Math.PI * epoch / totalEpochs)) / 2);

        public override string ToString() => $"Cosine({learningRate} → {minLearningRate} over {totalEpochs} epochs)";
    }

    private sealed class WarmupSchedule(LearningRateSchedule schedule, int warmupEpochs) : LearningRateSchedule
    {
        protected override float RateCore(int epoch) => epoch < warmupEpochs
            ? (float)((double)schedule.Rate(0) * (epoch + 1) / warmupEpochs)
            : schedule.Rate(epoch - warmupEpochs);

        public override string ToString() => $"Warmup({warmupEpochs} epochs, then {schedule})";
    }
}
