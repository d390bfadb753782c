using System;
using System.Collections.Generic;
using Xunit;

namespace Unrolled.Tests;

/// <summary>
/// The optimizers against an independent, deliberately plain double-precision transcription of PyTorch's
/// update rules (LAYERS.md, "Optimizers"), plus hand-computed values, argument checks, the learning-rate
/// schedules and the <see cref="NetworkTraining"/> extensions on hand-written fake networks.
/// </summary>
public class OptimizerTests
{
    // 1 and 7 run only the scalar tail; 33 and 1000 run whole vectors and then a tail of 1 or 8 (or fewer).
    private static readonly int[] Lengths = [1, 7, 33, 1000];

    private const int Steps = 8;

    // ---- References: PyTorch's formulas in double, one parameter at a time -------------------------

    /// <summary>torch.optim.SGD with dampening 0, as LAYERS.md states it.</summary>
    private sealed class ReferenceSgd(double lr, double momentum, double weightDecay, bool nesterov)
    {
        private double[]? _buffer; // null until the first step

        public void Step(double[] p, float[] gradient)
        {
            bool first = _buffer is null;
            _buffer ??= new double[p.Length];
            for (int i = 0; i < p.Length; i++)
            {
                double g = gradient[i] + weightDecay * p[i];
                if (momentum != 0)
                {
                    _buffer[i] = first ? g : momentum * _buffer[i] + g;
                    g = nesterov ? g + momentum * _buffer[i] : _buffer[i];
                }

                p[i] -= lr * g;
            }
        }
    }

    /// <summary>torch.optim.Adam (decoupled = false) and torch.optim.AdamW (decoupled = true).</summary>
    private sealed class ReferenceAdam(double lr, double beta1, double beta2, double eps, double weightDecay, bool decoupled)
    {
        private double[]? _m, _v;
        private int _t;

        public void Step(double[] p, float[] gradient)
        {
            _m ??= new double[p.Length];
            _v ??= new double[p.Length];
            _t++;
            for (int i = 0; i < p.Length; i++)
            {
                double g = gradient[i];
                if (decoupled)
                {
                    p[i] *= 1 - lr * weightDecay;
                }
                else
                {
                    g += weightDecay * p[i];
                }

                _m[i] = beta1 * _m[i] + (1 - beta1) * g;
                _v[i] = beta2 * _v[i] + (1 - beta2) * g * g;
                double mHat = _m[i] / (1 - Math.Pow(beta1, _t));
                double vHat = _v[i] / (1 - Math.Pow(beta2, _t));
                p[i] -= lr * mHat / (Math.Sqrt(vHat) + eps);
            }
        }
    }

    /// <summary>Runs the optimizer and the reference side by side over <see cref="Steps"/> steps of random
    /// gradients whose scale changes from step to step, comparing the parameters after every step.</summary>
    private static void CompareWithReference(Func<Optimizer> create, Func<Action<double[], float[]>> createReference,
        double tolerance, int seed)
    {
        foreach (int length in Lengths)
        {
            var random = new Random(seed + length);
            Optimizer optimizer = create();
            Action<double[], float[]> reference = createReference();
            float[] parameters = new float[length];
            double[] expected = new double[length];
            for (int i = 0; i < length; i++)
            {
                parameters[i] = (float)(random.NextDouble() * 2 - 1);
                expected[i] = parameters[i];
            }

            float[] gradients = new float[length];
            for (int step = 1; step <= Steps; step++)
            {
                double scale = step % 3 == 0 ? 0.05 : step % 2 == 0 ? 3.0 : 1.0;
                for (int i = 0; i < length; i++)
                {
                    gradients[i] = (float)((random.NextDouble() * 2 - 1) * scale);
                }

                float[] gradientsBefore = (float[])gradients.Clone();
                optimizer.Step(parameters, gradients);
                reference(expected, gradients);

                Assert.Equal(step, optimizer.StepCount);
                Assert.Equal(gradientsBefore, gradients);
                for (int i = 0; i < length; i++)
                {
                    double error = Math.Abs(parameters[i] - expected[i]);
                    Assert.True(error <= tolerance * (1 + Math.Abs(expected[i])),
                        $"length {length}, step {step}, parameter {i}: got {parameters[i]}, expected {expected[i]} (error {error:E2})");
                }
            }
        }
    }

    // ---- SGD ------------------------------------------------------------------------------------------

    [Theory]
    [InlineData(0.1f, 0f, 0f, false)]     // plain
    [InlineData(0.05f, 0.9f, 0f, false)]  // momentum
    [InlineData(0.05f, 0.9f, 0f, true)]   // Nesterov
    [InlineData(0.1f, 0f, 0.01f, false)]  // weight decay
    [InlineData(0.05f, 0.5f, 0.1f, true)] // all combined
    [InlineData(0.02f, 0.99f, 5e-4f, false)]
    public void Sgd_matches_the_PyTorch_rule(float lr, float momentum, float weightDecay, bool nesterov)
    {
        CompareWithReference(
            () => Optimizer.Sgd(lr, momentum, weightDecay, nesterov),
            () => new ReferenceSgd(lr, momentum, weightDecay, nesterov).Step,
            tolerance: 2e-6, seed: 11);
    }

    // ---- Adam and AdamW -------------------------------------------------------------------------------

    [Theory]
    [InlineData(1e-3f, 0.9f, 0.999f, 1e-8f, 0f)]  // PyTorch's defaults
    [InlineData(0.01f, 0.9f, 0.999f, 1e-8f, 0.1f)] // with L2 weight decay
    [InlineData(0.05f, 0.5f, 0.9f, 1e-3f, 0f)]     // non-default betas and ε
    [InlineData(0.02f, 0f, 0.99f, 1e-6f, 0.01f)]   // β1 = 0: no first-moment averaging
    public void Adam_matches_the_PyTorch_rule(float lr, float beta1, float beta2, float epsilon, float weightDecay)
    {
        CompareWithReference(
            () => Optimizer.Adam(lr, beta1, beta2, epsilon, weightDecay),
            () => new ReferenceAdam(lr, beta1, beta2, epsilon, weightDecay, decoupled: false).Step,
            tolerance: 2e-6, seed: 23);
    }

    [Theory]
    [InlineData(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f)] // PyTorch's defaults
    [InlineData(0.05f, 0.8f, 0.95f, 1e-4f, 0.5f)]   // strong decay, non-default betas and ε
    [InlineData(0.01f, 0.9f, 0.999f, 1e-8f, 0f)]    // no decay: the same as Adam
    public void AdamW_matches_the_PyTorch_rule(float lr, float beta1, float beta2, float epsilon, float weightDecay)
    {
        CompareWithReference(
            () => Optimizer.AdamW(lr, beta1, beta2, epsilon, weightDecay),
            () => new ReferenceAdam(lr, beta1, beta2, epsilon, weightDecay, decoupled: true).Step,
            tolerance: 2e-6, seed: 37);
    }

    [Fact]
    public void Factories_use_PyTorchs_defaults()
    {
        AdamOptimizer adam = Optimizer.Adam();
        Assert.Equal((1e-3f, 0.9f, 0.999f, 1e-8f, 0f, false),
            (adam.LearningRate, adam.Beta1, adam.Beta2, adam.Epsilon, adam.WeightDecay, adam.DecoupledWeightDecay));
        AdamOptimizer adamW = Optimizer.AdamW();
        Assert.Equal((1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, true),
            (adamW.LearningRate, adamW.Beta1, adamW.Beta2, adamW.Epsilon, adamW.WeightDecay, adamW.DecoupledWeightDecay));
        SgdOptimizer sgd = Optimizer.Sgd(0.1f);
        Assert.Equal((0.1f, 0f, 0f, false), (sgd.LearningRate, sgd.Momentum, sgd.WeightDecay, sgd.Nesterov));
    }

    // ---- Values worked out by hand --------------------------------------------------------------------

    [Fact]
    public void Sgd_with_momentum_matches_hand_computed_values()
    {
        // lr = 0.1, μ = 0.9, p = [1, −2].
        // Step 1, g = [0.5, 1]:  b = g = [0.5, 1];  p = [1 − 0.1·0.5, −2 − 0.1·1] = [0.95, −2.1].
        // Step 2, g = [−1, 2]:   b = 0.9·[0.5, 1] + [−1, 2] = [0.45 − 1, 0.9 + 2] = [−0.55, 2.9];
        //                        p = [0.95 + 0.1·0.55, −2.1 − 0.1·2.9] = [1.005, −2.39].
        var sgd = Optimizer.Sgd(0.1f, momentum: 0.9f);
        float[] p = [1f, -2f];

        sgd.Step(p, [0.5f, 1f]);
        Assert.Equal(0.95f, p[0], 1e-6f);
        Assert.Equal(-2.1f, p[1], 1e-6f);

        sgd.Step(p, [-1f, 2f]);
        Assert.Equal(1.005f, p[0], 1e-6f);
        Assert.Equal(-2.39f, p[1], 1e-6f);
    }

    [Fact]
    public void Adam_matches_hand_computed_values()
    {
        // lr = 0.1, β1 = 0.9, β2 = 0.999, ε = 1e-8, p = [1, −2].
        // Step 1, g = [0.5, −1]:
        //   m = 0.1·g = [0.05, −0.1];  v = 0.001·g² = [0.00025, 0.001]
        //   m̂ = m / (1 − 0.9) = [0.5, −1];  v̂ = v / (1 − 0.999) = [0.25, 1];  sqrt(v̂) = [0.5, 1]
        //   p −= 0.1 · m̂ / (sqrt(v̂) + ε) = 0.1 · [0.99999998, −0.99999999]  →  p = [0.9, −1.9] (to 2e-9)
        // Step 2, g = [−1, 2]:
        //   m = 0.9·[0.05, −0.1] + 0.1·[−1, 2] = [0.045 − 0.1, −0.09 + 0.2] = [−0.055, 0.11]
        //   v = 0.999·[0.00025, 0.001] + 0.001·[1, 4] = [0.00024975 + 0.001, 0.000999 + 0.004] = [0.00124975, 0.004999]
        //   1 − 0.9² = 0.19;  1 − 0.999² = 1 − 0.998001 = 0.001999
        //   m̂ = [−0.055 / 0.19, 0.11 / 0.19] = [−0.2894737, 0.5789474]
        //   v̂ = [0.00124975 / 0.001999, 0.004999 / 0.001999] = [0.6251876, 2.5007504]
        //   sqrt(v̂) = [0.7906881, 1.5813761]
        //   m̂ / (sqrt(v̂) + ε) = [−0.3661035, 0.3661035]
        //   p = [0.9 + 0.03661035, −1.9 − 0.03661035] = [0.9366104, −1.9366104]
        var adam = Optimizer.Adam(0.1f);
        float[] p = [1f, -2f];

        adam.Step(p, [0.5f, -1f]);
        Assert.Equal(0.9f, p[0], 1e-6f);
        Assert.Equal(-1.9f, p[1], 1e-6f);

        adam.Step(p, [-1f, 2f]);
        Assert.Equal(0.9366104f, p[0], 1e-6f);
        Assert.Equal(-1.9366104f, p[1], 1e-6f);
    }

    [Fact]
    public void AdamW_shrinks_the_parameters_before_the_update()
    {
        // lr = 0.1, λ = 0.5, p = 2, g = 0: the decay multiplies p by 1 − 0.1·0.5 = 0.95, and a zero
        // gradient leaves m = 0, so the Adam part adds nothing (0 / (0 + ε) = 0): p = 1.9.
        // The second step, again with g = 0, shrinks once more.
        var adamW = Optimizer.AdamW(0.1f, weightDecay: 0.5f);
        float[] p = [2f];
        adamW.Step(p, [0f]);
        Assert.Equal(1.9f, p[0], 1e-6f);
        adamW.Step(p, [0f]);
        Assert.Equal(1.805f, p[0], 1e-6f); // 1.9 · 0.95
    }

    // ---- State, sizing and allocation -----------------------------------------------------------------

    [Fact]
    public void An_optimizer_handed_another_size_than_it_was_sized_for_throws()
    {
        foreach (Optimizer optimizer in new Optimizer[] { Optimizer.Sgd(0.1f), Optimizer.Sgd(0.1f, 0.9f), Optimizer.Adam(), Optimizer.AdamW() })
        {
            optimizer.Step(new float[10], new float[10]);
            var error = Assert.Throws<InvalidOperationException>(() => optimizer.Step(new float[11], new float[11]));
            Assert.Contains("10", error.Message);
            Assert.Contains("11", error.Message);
            Assert.Equal(1, optimizer.StepCount); // the failed step is not counted

            // Reset forgets the size, so the optimizer can serve another network.
            optimizer.Reset();
            Assert.Equal(0, optimizer.StepCount);
            optimizer.Step(new float[11], new float[11]);
            Assert.Equal(1, optimizer.StepCount);
        }
    }

    [Fact]
    public void Parameters_and_gradients_of_different_lengths_throw()
    {
        var optimizer = Optimizer.Adam();
        Assert.Throws<ArgumentException>(() => optimizer.Step(new float[4], new float[5]));
        Assert.Equal(0, optimizer.StepCount);
    }

    [Fact]
    public void An_empty_parameter_span_is_a_valid_step()
    {
        var optimizer = Optimizer.Sgd(0.1f, 0.9f);
        optimizer.Step(Span<float>.Empty, ReadOnlySpan<float>.Empty);
        Assert.Equal(1, optimizer.StepCount);
    }

    [Fact]
    public void Reset_makes_the_next_step_behave_like_a_first_step()
    {
        float[] gradient1 = [0.3f, -0.7f, 1.1f], gradient2 = [-0.2f, 0.4f, 0.9f];
        foreach (Func<Optimizer> create in new Func<Optimizer>[] { () => Optimizer.Sgd(0.1f, 0.9f, nesterov: true), () => Optimizer.Adam(0.01f) })
        {
            Optimizer used = create();
            float[] p = [1f, 2f, 3f];
            used.Step(p, gradient1);
            used.Step(p, gradient2);
            used.Reset();
            float[] afterReset = [1f, 2f, 3f];
            used.Step(afterReset, gradient2);

            float[] fresh = [1f, 2f, 3f];
            create().Step(fresh, gradient2);
            Assert.Equal(fresh, afterReset);
        }
    }

    [Fact]
    public void The_learning_rate_can_change_between_steps()
    {
        // Plain SGD: each step moves by the rate in force at that step.
        var sgd = Optimizer.Sgd(0.1f);
        float[] p = [0f];
        sgd.Step(p, [1f]);
        sgd.LearningRate = 0.01f;
        sgd.Step(p, [1f]);
        Assert.Equal(-0.11f, p[0], 1e-7f);
    }

    [Fact]
    public void Step_allocates_nothing_after_the_first_call()
    {
        foreach (Optimizer optimizer in new Optimizer[]
                 {
                     Optimizer.Sgd(0.1f), Optimizer.Sgd(0.01f, 0.9f, 1e-4f, nesterov: true),
                     Optimizer.Adam(weightDecay: 0.01f), Optimizer.AdamW(),
                 })
        {
            float[] parameters = new float[1001];
            float[] gradients = new float[1001];
            Array.Fill(gradients, 0.01f);
            optimizer.Step(parameters, gradients); // sizes the state
            optimizer.Step(parameters, gradients);

            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 100; i++)
            {
                optimizer.Step(parameters, gradients);
            }

            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated == 0, $"{optimizer.GetType().Name} allocated {allocated} bytes in 100 steps.");
        }
    }

    // ---- Argument validation ---------------------------------------------------------------------------

    [Fact]
    public void Invalid_hyper_parameters_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer.Sgd(-0.1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer.Sgd(float.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer.Sgd(float.PositiveInfinity));
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer.Sgd(0.1f, momentum: -0.9f));
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer.Sgd(0.1f, weightDecay: -1e-4f));
        Assert.Throws<ArgumentException>(() => Optimizer.Sgd(0.1f, nesterov: true));

        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer.Adam(-1e-3f));
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer.Adam(beta1: 1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer.Adam(beta1: -0.1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer.Adam(beta2: 1.5f));
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer.Adam(beta2: float.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer.Adam(epsilon: -1e-8f));
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer.Adam(weightDecay: -0.01f));
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer.AdamW(weightDecay: -0.01f));
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer.AdamW(beta1: 1f));

        var optimizer = Optimizer.Adam();
        Assert.Throws<ArgumentOutOfRangeException>(() => optimizer.LearningRate = -1f);
        Assert.Equal(1e-3f, optimizer.LearningRate);

        // Zero is valid everywhere PyTorch allows it.
        Optimizer.Sgd(0f);
        Optimizer.Adam(0f, beta1: 0f, beta2: 0f, epsilon: 0f);
    }

    // ---- Learning-rate schedules -----------------------------------------------------------------------

    [Fact]
    public void Constant_and_exponential_schedules()
    {
        var constant = LearningRateSchedule.Constant(0.3f);
        Assert.Equal(0.3f, constant.Rate(0));
        Assert.Equal(0.3f, constant.Rate(1000));

        var exponential = LearningRateSchedule.Exponential(0.1f, 0.9f);
        for (int epoch = 0; epoch < 20; epoch++)
        {
            Assert.Equal(0.1 * Math.Pow(0.9, epoch), exponential.Rate(epoch), 1e-7);
        }
    }

    [Fact]
    public void StepDecay_multiplies_by_gamma_every_step_size_epochs()
    {
        // PyTorch StepLR(step_size = 3, gamma = 0.5) from lr = 0.1.
        var schedule = LearningRateSchedule.StepDecay(0.1f, stepSize: 3, gamma: 0.5f);
        float[] expected = [0.1f, 0.1f, 0.1f, 0.05f, 0.05f, 0.05f, 0.025f, 0.025f, 0.025f, 0.0125f];
        for (int epoch = 0; epoch < expected.Length; epoch++)
        {
            Assert.Equal(expected[epoch], schedule.Rate(epoch), 1e-8f);
        }
    }

    [Fact]
    public void Cosine_follows_the_closed_form()
    {
        const double max = 0.1, min = 0.001;
        const int total = 10;
        var schedule = LearningRateSchedule.Cosine((float)max, total, (float)min);
        foreach (int epoch in new[] { 0, 1, 3, 5, 7, 9, 10, 15, 20 })
        {
            double expected = min + (max - min) * (1 + Math.Cos(Math.PI * epoch / total)) / 2;
            Assert.Equal(expected, schedule.Rate(epoch), 1e-7);
        }

        Assert.Equal(0.1f, schedule.Rate(0), 1e-8f);
        Assert.Equal(0.0505f, schedule.Rate(5), 1e-7f); // the midpoint: (0.1 + 0.001) / 2
        Assert.Equal(0.001f, schedule.Rate(10), 1e-8f);
    }

    [Fact]
    public void Warmup_ramps_linearly_then_runs_the_wrapped_schedule_from_its_start()
    {
        var warm = LearningRateSchedule.Warmup(LearningRateSchedule.Constant(0.1f), 4);
        float[] expected = [0.025f, 0.05f, 0.075f, 0.1f, 0.1f, 0.1f];
        for (int epoch = 0; epoch < expected.Length; epoch++)
        {
            Assert.Equal(expected[epoch], warm.Rate(epoch), 1e-8f);
        }

        var cosine = LearningRateSchedule.Cosine(0.1f, 10);
        var warmCosine = LearningRateSchedule.Warmup(cosine, 2);
        Assert.Equal(0.05f, warmCosine.Rate(0), 1e-8f);
        Assert.Equal(0.1f, warmCosine.Rate(1), 1e-8f);
        for (int epoch = 2; epoch <= 12; epoch++)
        {
            Assert.Equal(cosine.Rate(epoch - 2), warmCosine.Rate(epoch));
        }

        Assert.Same(cosine, LearningRateSchedule.Warmup(cosine, 0));
    }

    [Fact]
    public void Apply_sets_the_optimizers_learning_rate()
    {
        var optimizer = Optimizer.Sgd(1f);
        var schedule = LearningRateSchedule.StepDecay(0.1f, 2, 0.1f);
        schedule.Apply(optimizer, 3);
        Assert.Equal(0.01f, optimizer.LearningRate, 1e-8f);
    }

    [Fact]
    public void Invalid_schedule_arguments_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Constant(-1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.StepDecay(0.1f, 0, 0.5f));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.StepDecay(0.1f, 3, 0f));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.StepDecay(0.1f, 3, float.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Exponential(0.1f, -0.5f));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Cosine(0.1f, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Cosine(0.1f, 10, -0.01f));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Cosine(0.1f, 10, 0.2f));
        Assert.Throws<ArgumentNullException>(() => LearningRateSchedule.Warmup(null!, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Warmup(LearningRateSchedule.Constant(0.1f), -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Constant(0.1f).Rate(-1));
        Assert.Throws<ArgumentNullException>(() => LearningRateSchedule.Constant(0.1f).Apply(null!, 0));
    }

    // ---- NetworkTraining on fake networks ------------------------------------------------------------

    /// <summary>
    /// y = w0·x0 + w1·x1 + b, one output, parameters [w0, w1, b]. The MSE gradient over N samples is
    /// (2/N)·Σ (y − t)·[x0, x1, 1]; the label overload treats each label as the target value. Every call is
    /// logged so that tests can check the order of events.
    /// </summary>
    private sealed class LinearFake : INetwork
    {
        private readonly float[] _parameters = [0.5f, -1f, 0.25f];
        private readonly float[] _gradients = new float[3];

        public List<string> Log { get; } = [];
        public string NetworkName => nameof(LinearFake);
        public int InputSize => 2;
        public int OutputSize => 1;
        public int ParameterCount => 3;
        public Loss Loss => Loss.MeanSquaredError;
        public Span<float> Parameters => _parameters;
        public Span<float> Gradients => _gradients;
        public Span<float> Buffers => Span<float>.Empty;
        public Span<long> Counters => Span<long>.Empty;
        public IReadOnlyList<TensorInfo> Tensors => [];
        public int MaxDegreeOfParallelism { get; set; } = 1;

        public void Forward(ReadOnlySpan<float> input, Span<float> output)
        {
            for (int n = 0; n < input.Length / 2; n++)
            {
                output[n] = _parameters[0] * input[2 * n] + _parameters[1] * input[2 * n + 1] + _parameters[2];
            }
        }

        public float ComputeGradients(ReadOnlySpan<float> input, ReadOnlySpan<int> labels)
        {
            Log.Add("ComputeGradients(labels)");
            float[] targets = new float[labels.Length];
            for (int i = 0; i < labels.Length; i++)
            {
                targets[i] = labels[i];
            }

            return Mse(input, targets);
        }

        public float ComputeGradients(ReadOnlySpan<float> input, ReadOnlySpan<float> targets)
        {
            Log.Add("ComputeGradients(targets)");
            return Mse(input, targets);
        }

        private float Mse(ReadOnlySpan<float> input, ReadOnlySpan<float> targets)
        {
            int batch = targets.Length;
            float[] output = new float[batch];
            Forward(input, output);
            Array.Clear(_gradients);
            double loss = 0;
            for (int n = 0; n < batch; n++)
            {
                float error = output[n] - targets[n];
                loss += error * error;
                _gradients[0] += 2f / batch * error * input[2 * n];
                _gradients[1] += 2f / batch * error * input[2 * n + 1];
                _gradients[2] += 2f / batch * error;
            }

            return (float)(loss / batch);
        }
    }

    /// <summary>An optimizer that only records what it was handed, to check what TrainStep passes it.</summary>
    private sealed class RecordingOptimizer(List<string> log) : Optimizer(0.5f)
    {
        public float[]? SeenGradients { get; private set; }

        protected override void AllocateState(int parameterCount) { }

        protected override void ClearState() { }

        protected override void StepCore(Span<float> parameters, ReadOnlySpan<float> gradients)
        {
            log.Add("Step");
            SeenGradients = gradients.ToArray();
        }
    }

    [Fact]
    public void TrainStep_computes_the_gradient_then_steps_the_optimizer()
    {
        // Two samples: x = (1, 2), t = 1 and x = (−1, 0.5), t = 0, with w = (0.5, −1), b = 0.25.
        //   y1 = 0.5 − 2 + 0.25 = −1.25, error −2.25;  y2 = −0.5 − 0.5 + 0.25 = −0.75, error −0.75
        //   loss = (2.25² + 0.75²) / 2 = (5.0625 + 0.5625) / 2 = 2.8125
        //   gradient = (2/2)·(−2.25·[1, 2, 1] + −0.75·[−1, 0.5, 1]) = [−2.25 + 0.75, −4.5 − 0.375, −3] = [−1.5, −4.875, −3]
        float[] input = [1f, 2f, -1f, 0.5f];
        float[] expectedGradient = [-1.5f, -4.875f, -3f];

        var network = new LinearFake();
        var recorder = new RecordingOptimizer(network.Log);
        float loss = network.TrainStep(input, [1, 0], recorder);
        Assert.Equal(2.8125f, loss, 1e-6f);
        Assert.Equal(new[] { "ComputeGradients(labels)", "Step" }, network.Log);
        Assert.Equal(expectedGradient, recorder.SeenGradients);
        Assert.Equal(1, recorder.StepCount);

        // With plain SGD the parameters move by −lr·gradient: [0.5 + 0.15, −1 + 0.4875, 0.25 + 0.3].
        var regression = new LinearFake();
        loss = regression.TrainStep(input, [1f, 0f], Optimizer.Sgd(0.1f));
        Assert.Equal(2.8125f, loss, 1e-6f);
        Assert.Equal(new[] { "ComputeGradients(targets)" }, regression.Log);
        Assert.Equal(0.65f, regression.Parameters[0], 1e-6f);
        Assert.Equal(-0.5125f, regression.Parameters[1], 1e-6f);
        Assert.Equal(0.55f, regression.Parameters[2], 1e-6f);
    }

    [Fact]
    public void Repeated_TrainSteps_reduce_the_loss()
    {
        // Targets from t = 2·x0 − 3·x1 + 1; Adam should fit them closely in a few hundred steps.
        var random = new Random(5);
        float[] input = new float[2 * 32];
        float[] targets = new float[32];
        for (int n = 0; n < 32; n++)
        {
            input[2 * n] = (float)(random.NextDouble() * 2 - 1);
            input[2 * n + 1] = (float)(random.NextDouble() * 2 - 1);
            targets[n] = 2 * input[2 * n] - 3 * input[2 * n + 1] + 1;
        }

        var network = new LinearFake();
        var adam = Optimizer.Adam(0.05f);
        float first = network.TrainStep(input, targets, adam);
        float last = first;
        for (int i = 0; i < 500; i++)
        {
            last = network.TrainStep(input, targets, adam);
        }

        Assert.True(last < first * 1e-3f, $"loss went from {first} to {last}");
        Assert.Equal(2f, network.Parameters[0], 0.05f);
        Assert.Equal(-3f, network.Parameters[1], 0.05f);
        Assert.Equal(1f, network.Parameters[2], 0.05f);
    }

    [Fact]
    public void TrainStep_rejects_null_arguments_and_a_foreign_optimizer()
    {
        var network = new LinearFake();
        Assert.Throws<ArgumentNullException>(() => network.TrainStep([1f, 2f], [1], null!));
        Assert.Throws<ArgumentNullException>(() => ((INetwork)null!).TrainStep([1f, 2f], [1f], Optimizer.Sgd(0.1f)));

        var sizedForAnother = Optimizer.Sgd(0.1f);
        sizedForAnother.Step(new float[5], new float[5]);
        Assert.Throws<InvalidOperationException>(() => network.TrainStep([1f, 2f], [1f], sizedForAnother));
    }

    /// <summary>Three classes; the outputs are the inputs, so each sample's argmax is chosen by the test.
    /// Records the batch size of every Forward call.</summary>
    private sealed class IdentityFake : INetwork
    {
        public List<int> Batches { get; } = [];
        public string NetworkName => nameof(IdentityFake);
        public int InputSize => 3;
        public int OutputSize => 3;
        public int ParameterCount => 0;
        public Loss Loss => Loss.CrossEntropy;
        public Span<float> Parameters => Span<float>.Empty;
        public Span<float> Gradients => Span<float>.Empty;
        public Span<float> Buffers => Span<float>.Empty;
        public Span<long> Counters => Span<long>.Empty;
        public IReadOnlyList<TensorInfo> Tensors => [];
        public int MaxDegreeOfParallelism { get; set; } = 1;

        public void Forward(ReadOnlySpan<float> input, Span<float> output)
        {
            Assert.Equal(input.Length, output.Length);
            Batches.Add(input.Length / 3);
            input.CopyTo(output);
        }

        public float ComputeGradients(ReadOnlySpan<float> input, ReadOnlySpan<int> labels) => throw new NotSupportedException();

        public float ComputeGradients(ReadOnlySpan<float> input, ReadOnlySpan<float> targets) => throw new NotSupportedException();
    }

    // Ten samples whose argmax is 0, 1, 2, 2, 1, 0, 0 (tie: the first wins), 2, 1, 0.
    private static readonly float[] TenSamples =
    [
        5, 1, 2,   0, 3, 1,   -1, -2, 0.5f,   1, 1, 2,   0, 9, 8,
        4, 4, 0,   7, 7, 7,   -3, -2, -1,     0, 1, 0,   2, -1, -1,
    ];

    private static readonly int[] TenClasses = [0, 1, 2, 2, 1, 0, 0, 2, 1, 0];

    [Fact]
    public void Predict_returns_the_argmax_of_every_sample_in_batches()
    {
        var network = new IdentityFake();
        Assert.Equal(TenClasses, network.Predict(TenSamples, batchSize: 4));
        Assert.Equal(new[] { 4, 4, 2 }, network.Batches);

        int[] classes = new int[10];
        network.Predict(TenSamples, classes);
        Assert.Equal(TenClasses, classes);
        Assert.Empty(network.Predict(ReadOnlySpan<float>.Empty));
    }

    [Fact]
    public void Evaluate_returns_the_fraction_of_correct_predictions()
    {
        var network = new IdentityFake();
        Assert.Equal(1f, network.Evaluate(TenSamples, TenClasses));

        // Three of the ten labels changed: 70 % accuracy, whatever the batch size.
        int[] labels = (int[])TenClasses.Clone();
        labels[0] = 1;
        labels[4] = 2;
        labels[9] = 2;
        foreach (int batchSize in new[] { 1, 3, 10, 256 })
        {
            Assert.Equal(0.7f, network.Evaluate(TenSamples, labels, batchSize), 1e-6f);
        }
    }

    [Fact]
    public void Evaluate_and_Predict_validate_their_arguments()
    {
        var network = new IdentityFake();
        Assert.Throws<ArgumentException>(() => network.Evaluate(TenSamples.AsSpan(0, 29), TenClasses));
        Assert.Throws<ArgumentException>(() => network.Evaluate(TenSamples, TenClasses.AsSpan(0, 9)));
        Assert.Throws<ArgumentException>(() => network.Evaluate(ReadOnlySpan<float>.Empty, ReadOnlySpan<int>.Empty));
        Assert.Throws<ArgumentOutOfRangeException>(() => network.Evaluate(TenSamples, TenClasses, batchSize: 0));
        int[] badLabels = (int[])TenClasses.Clone();
        badLabels[3] = 3;
        Assert.Throws<ArgumentOutOfRangeException>(() => network.Evaluate(TenSamples, badLabels));
        badLabels[3] = -1;
        Assert.Throws<ArgumentOutOfRangeException>(() => network.Evaluate(TenSamples, badLabels));

        Assert.Throws<ArgumentException>(() => network.Predict(TenSamples.AsSpan(0, 4)));
        Assert.Throws<ArgumentException>(() => network.Predict(TenSamples, new int[9]));
        Assert.Throws<ArgumentOutOfRangeException>(() => network.Predict(TenSamples, batchSize: -1));
        Assert.Throws<ArgumentNullException>(() => ((INetwork)null!).Predict(TenSamples));
        Assert.Empty(network.Batches);
    }
}
