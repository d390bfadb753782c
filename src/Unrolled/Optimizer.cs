using System;
using System.Collections.Generic;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Unrolled;

/// <summary>
/// Updates a flat span of parameters from the gradient of the loss, with exactly PyTorch's update
/// rules (see LAYERS.md, "Optimizers"). Create one with <see cref="Sgd"/>, <see cref="Adam"/> or
/// <see cref="AdamW"/>, and hand it <see cref="INetwork.Parameters"/> and <see cref="INetwork.Gradients"/>
/// after each backward pass.
/// </summary>
/// <remarks>
/// An optimizer keeps per-parameter state (a momentum buffer, Adam's moments), so one instance belongs
/// to one network: its first <see cref="Step"/> sizes that state to the parameter count, and a later step
/// with another count throws. The state is allocated once; a step allocates nothing after the first.
/// An instance is not thread-safe.
/// </remarks>
public abstract class Optimizer
{
    private float _learningRate;

    // The parameter count the state was sized for on the first step after construction or Reset; -1 before.
    private int _parameterCount = -1;

    /// <summary>Initialises the learning rate shared by every optimizer.</summary>
    /// <param name="learningRate">The learning rate, a finite non-negative number.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="learningRate"/> is negative, infinite or NaN.</exception>
    protected Optimizer(float learningRate) => LearningRate = learningRate;

    /// <summary>The learning rate the next step uses. A schedule may change it between steps.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative, infinite or NaN.</exception>
    public float LearningRate
    {
        get => _learningRate;
        set
        {
            RequireNonNegative(value, nameof(LearningRate));
            _learningRate = value;
        }
    }

    /// <summary>The number of steps taken since construction or the last <see cref="Reset"/>.
    /// During <see cref="StepCore"/> it is the current step t, counted from 1.</summary>
    public long StepCount { get; private set; }

    /// <summary>
    /// Takes one step: updates <paramref name="parameters"/> in place from <paramref name="gradients"/>
    /// (which are left unchanged) and advances <see cref="StepCount"/>.
    /// </summary>
    /// <param name="parameters">The parameters to update, e.g. <see cref="INetwork.Parameters"/>.</param>
    /// <param name="gradients">The gradient of the loss, laid out like <paramref name="parameters"/>.</param>
    /// <exception cref="ArgumentException">The two spans differ in length.</exception>
    /// <exception cref="InvalidOperationException">The optimizer was sized for another number of parameters
    /// by an earlier step (one optimizer serves one network; call <see cref="Reset"/> to reuse it).</exception>
    public void Step(Span<float> parameters, ReadOnlySpan<float> gradients)
    {
        if (parameters.Length != gradients.Length)
        {
            throw new ArgumentException(
                $"The gradients hold {gradients.Length} values but the parameters hold {parameters.Length}; they must be laid out alike.",
                nameof(gradients));
        }

        if (_parameterCount < 0)
        {
            AllocateState(parameters.Length);
            _parameterCount = parameters.Length;
        }
        else if (_parameterCount != parameters.Length)
        {
            throw new InvalidOperationException(
                $"This optimizer was sized for {_parameterCount} parameters on its first step and was given {parameters.Length}. " +
                "Use one optimizer per network, or call Reset() before handing it another network.");
        }

        StepCount++;
        StepCore(parameters, gradients);
    }

    /// <summary>
    /// Forgets everything learnt from earlier steps: clears the state (momentum, moments), sets
    /// <see cref="StepCount"/> back to 0 and lets the next step size the optimizer anew.
    /// The learning rate and hyper-parameters are kept.
    /// </summary>
    public void Reset()
    {
        StepCount = 0;
        _parameterCount = -1;
        ClearState();
    }

    /// <summary>
    /// A copy of everything the next steps depend on besides the learning rate's future values: the step
    /// count, the current learning rate, the parameter count the state was sized for (-1 before the first
    /// step) and the per-parameter arrays (e.g. Adam's "m" and "v", SGD's "momentum_buffer").
    /// <see cref="ImportState"/> on an optimizer built with the same hyper-parameters continues bit for bit.
    /// </summary>
    public OptimizerState ExportState()
    {
        var arrays = new Dictionary<string, float[]>(StringComparer.Ordinal);
        if (_parameterCount >= 0)
            ExportArrays(arrays);
        return new OptimizerState(GetType().Name, StepCount, LearningRate, _parameterCount, arrays);
    }

    /// <summary>Restores what <see cref="ExportState"/> copied; the arrays are copied, not kept.</summary>
    public void ImportState(OptimizerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Kind != GetType().Name)
            throw new ArgumentException($"The state is a {state.Kind}'s; this optimizer is a {GetType().Name}.", nameof(state));
        if (state.StepCount < 0)
            throw new ArgumentOutOfRangeException(nameof(state), state.StepCount, "The step count cannot be negative.");
        Reset();
        LearningRate = state.LearningRate;
        if (state.ParameterCount >= 0)
        {
            AllocateState(state.ParameterCount);
            _parameterCount = state.ParameterCount;
            foreach (var (name, values) in state.Arrays)
            {
                if (values.Length != state.ParameterCount)
                    throw new ArgumentException($"The state array '{name}' holds {values.Length} values, not {state.ParameterCount}.", nameof(state));
            }
            ImportArrays(state.Arrays);
        }
        StepCount = state.StepCount;
    }

    /// <summary>Adds the per-parameter state arrays under stable names (called only once the state is sized).</summary>
    protected virtual void ExportArrays(IDictionary<string, float[]> arrays) =>
        throw new NotSupportedException($"{GetType().Name} does not export its state.");

    /// <summary>Copies the arrays <see cref="ExportArrays"/> wrote into the freshly sized state.</summary>
    protected virtual void ImportArrays(IReadOnlyDictionary<string, float[]> arrays) =>
        throw new NotSupportedException($"{GetType().Name} does not import state.");

    private protected static void CopyNamed(IReadOnlyDictionary<string, float[]> arrays, string name, float[]? destination)
    {
        if (destination is null)
            return;
        if (!arrays.TryGetValue(name, out float[]? source))
            throw new ArgumentException($"The optimizer state has no '{name}' array.", nameof(arrays));
        source.AsSpan().CopyTo(destination);
    }

    /// <summary>Makes the per-parameter state ready for <paramref name="parameterCount"/> parameters,
    /// all zero. Called before the first step after construction or <see cref="Reset"/>; an implementation
    /// may keep arrays it already has when their length fits.</summary>
    protected abstract void AllocateState(int parameterCount);

    /// <summary>Zeroes the per-parameter state (called by <see cref="Reset"/>).</summary>
    protected abstract void ClearState();

    /// <summary>The update itself. The spans have been checked to be of the length the state was sized for,
    /// and <see cref="StepCount"/> already counts this step.</summary>
    protected abstract void StepCore(Span<float> parameters, ReadOnlySpan<float> gradients);

    /// <summary>Stochastic gradient descent with optional momentum, weight decay and Nesterov momentum
    /// (PyTorch <c>torch.optim.SGD</c> with dampening 0).</summary>
    /// <param name="learningRate">lr, non-negative.</param>
    /// <param name="momentum">μ, non-negative; 0 turns momentum off.</param>
    /// <param name="weightDecay">λ, non-negative: the L2 penalty added to the gradient as g + λp.</param>
    /// <param name="nesterov">Use Nesterov momentum; requires <paramref name="momentum"/> &gt; 0.</param>
    /// <exception cref="ArgumentOutOfRangeException">A rate, the momentum or the weight decay is negative or not finite.</exception>
    /// <exception cref="ArgumentException"><paramref name="nesterov"/> is set without momentum.</exception>
    public static SgdOptimizer Sgd(float learningRate, float momentum = 0, float weightDecay = 0, bool nesterov = false) =>
        new(learningRate, momentum, weightDecay, nesterov);

    /// <summary>Adam with the L2 penalty folded into the gradient (PyTorch <c>torch.optim.Adam</c>).</summary>
    /// <param name="learningRate">lr, non-negative.</param>
    /// <param name="beta1">β1, the decay of the first moment, in [0, 1).</param>
    /// <param name="beta2">β2, the decay of the second moment, in [0, 1).</param>
    /// <param name="epsilon">ε, added to the denominator, non-negative.</param>
    /// <param name="weightDecay">λ, non-negative, applied as g + λp.</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is outside its range or not finite.</exception>
    public static AdamOptimizer Adam(float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
        float epsilon = 1e-8f, float weightDecay = 0) =>
        new(learningRate, beta1, beta2, epsilon, weightDecay, decoupledWeightDecay: false);

    /// <summary>Adam with decoupled weight decay (PyTorch <c>torch.optim.AdamW</c>): each step first shrinks
    /// the parameters as p·(1 − lr·λ), then takes the Adam update on the undecayed gradient.</summary>
    /// <param name="learningRate">lr, non-negative.</param>
    /// <param name="beta1">β1, the decay of the first moment, in [0, 1).</param>
    /// <param name="beta2">β2, the decay of the second moment, in [0, 1).</param>
    /// <param name="epsilon">ε, added to the denominator, non-negative.</param>
    /// <param name="weightDecay">λ, non-negative.</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is outside its range or not finite.</exception>
    public static AdamOptimizer AdamW(float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
        float epsilon = 1e-8f, float weightDecay = 0.01f) =>
        new(learningRate, beta1, beta2, epsilon, weightDecay, decoupledWeightDecay: true);

    /// <summary>Throws unless <paramref name="value"/> is finite and at least 0 (the test is written so that NaN fails it).</summary>
    internal static void RequireNonNegative(float value, string name)
    {
        if (!(value >= 0) || float.IsPositiveInfinity(value))
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be a finite number of at least 0.");
        }
    }

    /// <summary>Throws unless <paramref name="value"/> is in [0, 1), the range PyTorch allows for Adam's betas.</summary>
    private protected static void RequireBeta(float value, string name)
    {
        if (!(value >= 0 && value < 1))
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be in [0, 1).");
        }
    }

    /// <summary>Returns <paramref name="state"/> zeroed if it already has <paramref name="length"/> elements, otherwise a new array.</summary>
    private protected static float[] ZeroedArray(float[]? state, int length)
    {
        if (state is null || state.Length != length)
        {
            return new float[length];
        }

        Array.Clear(state);
        return state;
    }
}

/// <summary>
/// Stochastic gradient descent, PyTorch's rule with dampening 0. Per parameter, at step t:
/// <code>
/// g ← g + λp
/// if μ ≠ 0:  b ← (t = 1 ? g : μb + g);  g ← nesterov ? g + μb : b
/// p ← p − lr·g
/// </code>
/// Create one with <see cref="Optimizer.Sgd"/>.
/// </summary>
public sealed class SgdOptimizer : Optimizer
{
    // The momentum buffer b; null while momentum is 0 or before the first step.
    private float[]? _momentumBuffer;

    internal SgdOptimizer(float learningRate, float momentum, float weightDecay, bool nesterov)
        : base(learningRate)
    {
        RequireNonNegative(momentum, nameof(momentum));
        RequireNonNegative(weightDecay, nameof(weightDecay));
        if (nesterov && momentum == 0)
        {
            throw new ArgumentException("Nesterov momentum requires a momentum greater than 0.", nameof(nesterov));
        }

        Momentum = momentum;
        WeightDecay = weightDecay;
        Nesterov = nesterov;
    }

    /// <summary>μ, the momentum factor; 0 when momentum is off.</summary>
    public float Momentum { get; }

    /// <summary>λ, the L2 penalty added to the gradient.</summary>
    public float WeightDecay { get; }

    /// <summary>Whether the step uses Nesterov momentum.</summary>
    public bool Nesterov { get; }

    /// <inheritdoc/>
    protected override void AllocateState(int parameterCount)
    {
        if (Momentum != 0)
        {
            _momentumBuffer = ZeroedArray(_momentumBuffer, parameterCount);
        }
    }

    /// <inheritdoc/>
    protected override void ExportArrays(IDictionary<string, float[]> arrays)
    {
        if (_momentumBuffer is not null)
            arrays["momentum_buffer"] = (float[])_momentumBuffer.Clone();
    }

    protected override void ImportArrays(IReadOnlyDictionary<string, float[]> arrays) =>
        CopyNamed(arrays, "momentum_buffer", _momentumBuffer);

    protected override void ClearState()
    {
        if (_momentumBuffer is not null)
        {
            Array.Clear(_momentumBuffer);
        }
    }

    /// <inheritdoc/>
    protected override void StepCore(Span<float> parameters, ReadOnlySpan<float> gradients)
    {
        if (Momentum == 0)
        {
            Plain(parameters, gradients, LearningRate, WeightDecay);
        }
        else
        {
            WithMomentum(parameters, gradients, _momentumBuffer!, LearningRate, WeightDecay, Momentum, Nesterov);
        }
    }

    /// <summary>p ← p − lr·(g + λp).</summary>
    private static void Plain(Span<float> parameters, ReadOnlySpan<float> gradients, float lr, float decay)
    {
        ref float p = ref MemoryMarshal.GetReference(parameters);
        ref float g = ref MemoryMarshal.GetReference(gradients);
        nuint n = (nuint)parameters.Length;
        nuint i = 0;

        // One vector of parameters at a time; the scalar loop below finishes the tail.
        if (Vector.IsHardwareAccelerated)
        {
            for (; i + (nuint)Vector<float>.Count <= n; i += (nuint)Vector<float>.Count)
            {
                Vector<float> pv = Vector.LoadUnsafe(ref p, i);
                Vector<float> d = Vector.LoadUnsafe(ref g, i) + decay * pv;
                (pv - lr * d).StoreUnsafe(ref p, i);
            }
        }

        for (; i < n; i++)
        {
            ref float pi = ref Unsafe.Add(ref p, i);
            float d = Unsafe.Add(ref g, i) + decay * pi;
            pi -= lr * d;
        }
    }

    /// <summary>The momentum (and Nesterov) update. The buffer is all zero before the first step (after
    /// construction or <see cref="Optimizer.Reset"/>), so there μ·0 + g gives exactly b = g, PyTorch's start.</summary>
    private static void WithMomentum(Span<float> parameters, ReadOnlySpan<float> gradients, float[] buffer,
        float lr, float decay, float mu, bool nesterov)
    {
        ref float p = ref MemoryMarshal.GetReference(parameters);
        ref float g = ref MemoryMarshal.GetReference(gradients);
        ref float b = ref MemoryMarshal.GetArrayDataReference(buffer);
        nuint n = (nuint)parameters.Length;
        nuint i = 0;

        // One vector at a time, reading and writing p and b once each; the scalar loop finishes the tail.
        if (Vector.IsHardwareAccelerated)
        {
            for (; i + (nuint)Vector<float>.Count <= n; i += (nuint)Vector<float>.Count)
            {
                Vector<float> pv = Vector.LoadUnsafe(ref p, i);
                Vector<float> d = Vector.LoadUnsafe(ref g, i) + decay * pv;
                Vector<float> bv = mu * Vector.LoadUnsafe(ref b, i) + d;
                bv.StoreUnsafe(ref b, i);
                d = nesterov ? d + mu * bv : bv;
                (pv - lr * d).StoreUnsafe(ref p, i);
            }
        }

        for (; i < n; i++)
        {
            ref float pi = ref Unsafe.Add(ref p, i);
            ref float bi = ref Unsafe.Add(ref b, i);
            float d = Unsafe.Add(ref g, i) + decay * pi;
            bi = mu * bi + d;
            d = nesterov ? d + mu * bi : bi;
            pi -= lr * d;
        }
    }
}

/// <summary>
/// Adam (PyTorch <c>torch.optim.Adam</c>) or, with decoupled weight decay, AdamW (<c>torch.optim.AdamW</c>).
/// Per parameter, at step t counted from 1:
/// <code>
/// Adam:  g ← g + λp            AdamW:  p ← p·(1 − lr·λ)
/// m ← β1·m + (1 − β1)·g
/// v ← β2·v + (1 − β2)·g²
/// p ← p − lr · (m / (1 − β1ᵗ)) / (sqrt(v / (1 − β2ᵗ)) + ε)
/// </code>
/// The bias corrections are computed in double once a step, as PyTorch computes them in Python floats.
/// Create one with <see cref="Optimizer.Adam"/> or <see cref="Optimizer.AdamW"/>.
/// </summary>
public sealed class AdamOptimizer : Optimizer
{
    // The first and second moment estimates m and v; null before the first step.
    private float[]? _m;
    private float[]? _v;

    internal AdamOptimizer(float learningRate, float beta1, float beta2, float epsilon, float weightDecay,
        bool decoupledWeightDecay)
        : base(learningRate)
    {
        RequireBeta(beta1, nameof(beta1));
        RequireBeta(beta2, nameof(beta2));
        RequireNonNegative(epsilon, nameof(epsilon));
        RequireNonNegative(weightDecay, nameof(weightDecay));
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
        WeightDecay = weightDecay;
        DecoupledWeightDecay = decoupledWeightDecay;
    }

    /// <summary>β1, the decay rate of the first moment.</summary>
    public float Beta1 { get; }

    /// <summary>β2, the decay rate of the second moment.</summary>
    public float Beta2 { get; }

    /// <summary>ε, added to the denominator for numerical stability.</summary>
    public float Epsilon { get; }

    /// <summary>λ, the weight decay.</summary>
    public float WeightDecay { get; }

    /// <summary>True for AdamW (the parameters shrink by lr·λ before the update), false for Adam
    /// (λp is added to the gradient).</summary>
    public bool DecoupledWeightDecay { get; }

    /// <inheritdoc/>
    protected override void AllocateState(int parameterCount)
    {
        _m = ZeroedArray(_m, parameterCount);
        _v = ZeroedArray(_v, parameterCount);
    }

    /// <inheritdoc/>
    protected override void ExportArrays(IDictionary<string, float[]> arrays)
    {
        arrays["m"] = (float[])_m!.Clone();
        arrays["v"] = (float[])_v!.Clone();
    }

    protected override void ImportArrays(IReadOnlyDictionary<string, float[]> arrays)
    {
        CopyNamed(arrays, "m", _m);
        CopyNamed(arrays, "v", _v);
    }

    protected override void ClearState()
    {
        if (_m is not null)
        {
            Array.Clear(_m);
        }

        if (_v is not null)
        {
            Array.Clear(_v);
        }
    }

    /// <inheritdoc/>
    protected override void StepCore(Span<float> parameters, ReadOnlySpan<float> gradients)
    {
        // The per-step scalars, following PyTorch's single-tensor Adam:
        // step_size = lr / (1 − β1ᵗ), denominator = sqrt(v) / sqrt(1 − β2ᵗ) + ε.
        double t = StepCount;
        double lr = LearningRate;
        float stepSize = (float)(lr / (1 - Math.Pow(Beta1, t)));
        float correction2Sqrt = (float)Math.Sqrt(1 - Math.Pow(Beta2, t));

        // Adam folds the decay into the gradient; AdamW multiplies the parameters before the update.
        float coupledDecay = DecoupledWeightDecay ? 0f : WeightDecay;
        float shrink = DecoupledWeightDecay ? (float)(1 - lr * WeightDecay) : 1f;

        Update(parameters, gradients, _m!, _v!, stepSize, correction2Sqrt, coupledDecay, shrink);
    }

    private void Update(Span<float> parameters, ReadOnlySpan<float> gradients, float[] mArray, float[] vArray,
        float stepSize, float correction2Sqrt, float coupledDecay, float shrink)
    {
        ref float p = ref MemoryMarshal.GetReference(parameters);
        ref float g = ref MemoryMarshal.GetReference(gradients);
        ref float m = ref MemoryMarshal.GetArrayDataReference(mArray);
        ref float v = ref MemoryMarshal.GetArrayDataReference(vArray);
        float beta1 = Beta1, beta2 = Beta2, epsilon = Epsilon;
        float oneMinusBeta1 = 1 - beta1, oneMinusBeta2 = 1 - beta2;
        nuint n = (nuint)parameters.Length;
        nuint i = 0;

        // One vector of parameters at a time, the whole update fused into one pass over p, g, m and v;
        // the scalar loop below finishes the tail with the same arithmetic.
        if (Vector.IsHardwareAccelerated)
        {
            for (; i + (nuint)Vector<float>.Count <= n; i += (nuint)Vector<float>.Count)
            {
                Vector<float> pv = Vector.LoadUnsafe(ref p, i) * shrink;
                Vector<float> d = Vector.LoadUnsafe(ref g, i) + coupledDecay * pv;
                Vector<float> mv = beta1 * Vector.LoadUnsafe(ref m, i) + oneMinusBeta1 * d;
                Vector<float> vv = beta2 * Vector.LoadUnsafe(ref v, i) + oneMinusBeta2 * (d * d);
                mv.StoreUnsafe(ref m, i);
                vv.StoreUnsafe(ref v, i);
                Vector<float> denominator = Vector.SquareRoot(vv) / correction2Sqrt + new Vector<float>(epsilon);
                (pv - stepSize * (mv / denominator)).StoreUnsafe(ref p, i);
            }
        }

        for (; i < n; i++)
        {
            ref float pi = ref Unsafe.Add(ref p, i);
            ref float mi = ref Unsafe.Add(ref m, i);
            ref float vi = ref Unsafe.Add(ref v, i);
            float pShrunk = pi * shrink;
            float d = Unsafe.Add(ref g, i) + coupledDecay * pShrunk;
            mi = beta1 * mi + oneMinusBeta1 * d;
            vi = beta2 * vi + oneMinusBeta2 * (d * d);
            float denominator = MathF.Sqrt(vi) / correction2Sqrt + epsilon;
            pi = pShrunk - stepSize * (mi / denominator);
        }
    }
}

/// <summary>What <see cref="Optimizer.ExportState"/> returns: enough to continue an optimizer bit for bit.</summary>
public sealed record OptimizerState(string Kind, long StepCount, float LearningRate, int ParameterCount,
    IReadOnlyDictionary<string, float[]> Arrays);
