using System;
using System.Collections.Generic;
using System.Linq;
using Unrolled.Tests.Harness;

namespace Unrolled.Tests.Reference;

/// <summary>What a loss compares the network's output with: integer class labels or float targets.</summary>
public sealed class Targets
{
    private Targets(int[]? labels, double[]? values) { Labels = labels; Values = values; }
    public int[]? Labels { get; }
    public double[]? Values { get; }
    public static Targets Of(int[] labels) => new(labels, null);
    public static Targets Of(double[] values) => new(null, values);
}

/// <summary>One stored tensor in the PyTorch layout: name, shape, kind and place (as INetwork.Tensors lists them).</summary>
public sealed record ReferenceTensor(string Name, int[] Shape, TensorKind Kind, int Offset, int Length);

/// <summary>The result of a training-mode forward and backward.</summary>
/// <param name="Loss">The batch-mean loss.</param>
/// <param name="Gradients">d loss / d parameter, laid out like the parameters.</param>
/// <param name="UpdatedBuffers">The batch-norm running statistics after the step's momentum update.</param>
public sealed record ReferenceGradient(double Loss, double[] Gradients, double[] UpdatedBuffers);

/// <summary>
/// A deliberately naive reference implementation of LAYERS.md: double precision, NCHW arrays, plain loops
/// written from the formulas, no blocking and no code shared with the generator. It is slow on purpose;
/// its only job is to be obviously right.
/// Parameters are one flat array in declaration order, weight before bias, PyTorch layouts; buffers are
/// running_mean then running_var for each batch-norm layer in declaration order.
/// </summary>
public sealed class NaiveNetwork
{
    private const double BatchNormEps = 1e-5;
    private const double BatchNormMomentum = 0.1;

    /// <summary>One step of the computation. A Conv2D or Dense with an activation shorthand is two steps.</summary>
    private sealed class Step
    {
        public required LayerSpec Layer { get; init; }
        public required Shape In { get; init; }
        public required Shape Out { get; init; }
        /// <summary>The declared layer this step belongs to (dropout masks are keyed by it).</summary>
        public required int LayerIndex { get; init; }
        public int WeightOffset { get; set; } = -1;
        public int BiasOffset { get; set; } = -1;
        public int BufferOffset { get; set; } = -1;
    }

    private readonly List<Step> _steps = new();
    private readonly List<ReferenceTensor> _tensors = new();

    public NaiveNetwork(NetDecl decl)
    {
        Decl = decl;
        var shapes = decl.OutputShapes();
        var names = decl.LayerNames();
        int parameters = 0, buffers = 0;
        Shape shape = decl.Input;
        for (int i = 0; i < decl.Layers.Count; i++)
        {
            var layer = decl.Layers[i];
            var step = new Step { Layer = layer, In = shape, Out = shapes[i], LayerIndex = i };
            string name = names[i];
            switch (layer.Kind)
            {
                case LayerKind.Conv2D:
                    step.WeightOffset = AddTensor($"{name}.weight", new[] { layer.Filters, shape.C, layer.KernelHeight, layer.KernelWidth }, TensorKind.Parameter, ref parameters);
                    if (layer.Bias) step.BiasOffset = AddTensor($"{name}.bias", new[] { layer.Filters }, TensorKind.Parameter, ref parameters);
                    break;
                case LayerKind.Dense:
                    step.WeightOffset = AddTensor($"{name}.weight", new[] { layer.Units, shape.Size }, TensorKind.Parameter, ref parameters);
                    if (layer.Bias) step.BiasOffset = AddTensor($"{name}.bias", new[] { layer.Units }, TensorKind.Parameter, ref parameters);
                    break;
                case LayerKind.BatchNorm:
                    step.WeightOffset = AddTensor($"{name}.weight", new[] { shape.C }, TensorKind.Parameter, ref parameters);
                    step.BiasOffset = AddTensor($"{name}.bias", new[] { shape.C }, TensorKind.Parameter, ref parameters);
                    step.BufferOffset = AddTensor($"{name}.running_mean", new[] { shape.C }, TensorKind.Buffer, ref buffers);
                    AddTensor($"{name}.running_var", new[] { shape.C }, TensorKind.Buffer, ref buffers);
                    _tensors.Add(new ReferenceTensor($"{name}.num_batches_tracked", Array.Empty<int>(), TensorKind.Counter, CounterCount++, 1));
                    break;
            }
            _steps.Add(step);
            if (layer.Kind is LayerKind.Conv2D or LayerKind.Dense && LayerSpec.ActivationLayer(layer.Activation) is { } activation)
                _steps.Add(new Step { Layer = activation, In = shapes[i], Out = shapes[i], LayerIndex = i });
            shape = shapes[i];
        }
        ParameterCount = parameters;
        BufferCount = buffers;
        InputSize = decl.Input.Size;
        OutputSize = shape.Size;
    }

    private int AddTensor(string name, int[] shape, TensorKind kind, ref int next)
    {
        int length = shape.Aggregate(1, (a, b) => a * b);
        _tensors.Add(new ReferenceTensor(name, shape, kind, next, length));
        int offset = next;
        next += length;
        return offset;
    }

    public NetDecl Decl { get; }
    public int InputSize { get; }
    public int OutputSize { get; }
    public int ParameterCount { get; }
    public int BufferCount { get; }
    public int CounterCount { get; private set; }
    /// <summary>The tensors a PyTorch state_dict of the same network holds, in declaration order.</summary>
    public IReadOnlyList<ReferenceTensor> Tensors => _tensors;

    /// <summary>Whether the last step is a Softmax whose cross-entropy is taken on the logits before it.</summary>
    private bool FusedSoftmax => Decl.Loss == Unrolled.Loss.CrossEntropy && _steps.Count > 0 && _steps[^1].Layer.Kind == LayerKind.Softmax;

    // ------------------------------------------------------------------ forward

    /// <summary>Runs the network. In inference mode batch norm uses the running statistics and dropout is
    /// the identity; in training mode batch norm uses the batch statistics and each dropout layer applies
    /// its mask from <paramref name="dropoutMasks"/> (keyed by layer index; a layer without a mask acts as p = 0).</summary>
    public double[] Forward(double[] parameters, double[] buffers, double[] input, bool training = false,
        IReadOnlyDictionary<int, bool[]>? dropoutMasks = null) =>
        Run(parameters, buffers, input, training, dropoutMasks).Activations[^1];

    private sealed record Trace(List<double[]> Activations, int Batch, double[] UpdatedBuffers);

    private Trace Run(double[] p, double[] buffers, double[] input, bool training, IReadOnlyDictionary<int, bool[]>? masks,
        Random? roundingNoise = null)
    {
        if (p.Length != ParameterCount) throw new ArgumentException($"expected {ParameterCount} parameters, got {p.Length}");
        if (buffers.Length != BufferCount) throw new ArgumentException($"expected {BufferCount} buffer values, got {buffers.Length}");
        if (input.Length % InputSize != 0) throw new ArgumentException("input is not a whole number of samples");
        int batch = input.Length / InputSize;
        var activations = new List<double[]> { input };
        var updated = (double[])buffers.Clone();
        foreach (var step in _steps)
        {
            double[] x = activations[^1];
            double[] y = new double[batch * step.Out.Size];
            switch (step.Layer.Kind)
            {
                case LayerKind.Conv2D: ConvForward(step, p, x, y, batch); break;
                case LayerKind.Dense: DenseForward(step, p, x, y, batch); break;
                case LayerKind.MaxPool2D: MaxPoolForward(step, x, y, batch, null); break;
                case LayerKind.AvgPool2D: AvgPoolForward(step, x, y, batch); break;
                case LayerKind.GlobalAvgPool2D: GlobalAvgPoolForward(step, x, y, batch); break;
                case LayerKind.Flatten: Array.Copy(x, y, x.Length); break;
                case LayerKind.BatchNorm:
                    if (training) BatchNormTrainForward(step, p, updated, x, y, batch);
                    else BatchNormInferenceForward(step, p, buffers, x, y, batch);
                    break;
                case LayerKind.Dropout:
                {
                    bool[]? mask = training && masks != null && masks.TryGetValue(step.LayerIndex, out var m) ? m : null;
                    for (int i = 0; i < x.Length; i++)
                        y[i] = mask == null ? x[i] : mask[i] ? x[i] / (1 - step.Layer.P) : 0;
                    break;
                }
                case LayerKind.LocalResponseNorm: LrnForward(step, x, y, batch); break;
                case LayerKind.ReLU: for (int i = 0; i < x.Length; i++) y[i] = x[i] > 0 ? x[i] : 0; break;
                case LayerKind.LeakyReLU: for (int i = 0; i < x.Length; i++) y[i] = x[i] > 0 ? x[i] : step.Layer.Slope * x[i]; break;
                case LayerKind.Sigmoid: for (int i = 0; i < x.Length; i++) y[i] = 1 / (1 + Math.Exp(-x[i])); break;
                case LayerKind.Tanh: for (int i = 0; i < x.Length; i++) y[i] = Math.Tanh(x[i]); break;
                case LayerKind.Softmax: SoftmaxForward(step.In.Size, x, y, batch); break;
                default: throw new NotSupportedException(step.Layer.Kind.ToString());
            }
            AddRoundingNoise(y, roundingNoise);
            activations.Add(y);
        }
        return new Trace(activations, batch, updated);
    }

    /// <summary>One float32 ulp, relative (2⁻²³): the size of the rounding noise.</summary>
    public static readonly double FloatUlp = Math.Pow(2, -23);

    private static void AddRoundingNoise(double[] values, Random? noise)
    {
        if (noise == null) return;
        for (int i = 0; i < values.Length; i++) values[i] *= 1 + (2 * noise.NextDouble() - 1) * FloatUlp;
    }

    /// <summary>The input cell a window cell reads along one axis, or −1 when it lies in the padding.</summary>
    private static int Source(int output, int stride, int padBefore, int offset, int length)
    {
        int i = output * stride - padBefore + offset;
        return i >= 0 && i < length ? i : -1;
    }

    private static (AxisWindow Rows, AxisWindow Cols) Windows(Step step, int kh, int kw) =>
        (AxisWindow.Resolve(step.In.H, kh, step.Layer.Stride, step.Layer.Padding),
         AxisWindow.Resolve(step.In.W, kw, step.Layer.Stride, step.Layer.Padding));

    private static void ConvForward(Step s, double[] p, double[] x, double[] y, int batch)
    {
        var L = s.Layer;
        var (rows, cols) = Windows(s, L.KernelHeight, L.KernelWidth);
        int C = s.In.C, H = s.In.H, W = s.In.W, F = s.Out.C, Ho = s.Out.H, Wo = s.Out.W;
        for (int n = 0; n < batch; n++)
        for (int f = 0; f < F; f++)
        for (int oh = 0; oh < Ho; oh++)
        for (int ow = 0; ow < Wo; ow++)
        {
            double sum = s.BiasOffset >= 0 ? p[s.BiasOffset + f] : 0;
            for (int c = 0; c < C; c++)
            for (int kh = 0; kh < L.KernelHeight; kh++)
            {
                int ih = Source(oh, L.Stride, rows.PadBefore, kh, H);
                if (ih < 0) continue;
                for (int kw = 0; kw < L.KernelWidth; kw++)
                {
                    int iw = Source(ow, L.Stride, cols.PadBefore, kw, W);
                    if (iw < 0) continue;
                    sum += x[((n * C + c) * H + ih) * W + iw] * p[s.WeightOffset + ((f * C + c) * L.KernelHeight + kh) * L.KernelWidth + kw];
                }
            }
            y[((n * F + f) * Ho + oh) * Wo + ow] = sum;
        }
    }

    private static void DenseForward(Step s, double[] p, double[] x, double[] y, int batch)
    {
        int inputs = s.In.Size, units = s.Out.Size;
        for (int n = 0; n < batch; n++)
        for (int u = 0; u < units; u++)
        {
            double sum = s.BiasOffset >= 0 ? p[s.BiasOffset + u] : 0;
            for (int i = 0; i < inputs; i++) sum += x[n * inputs + i] * p[s.WeightOffset + u * inputs + i];
            y[n * units + u] = sum;
        }
    }

    /// <summary>Max over the real cells of each window; <paramref name="argmax"/> (if given) receives the flat
    /// input index of the first maximum in row-major window order. Padded cells are skipped, so never win.</summary>
    private static void MaxPoolForward(Step s, double[] x, double[] y, int batch, int[]? argmax)
    {
        int K = s.Layer.Size;
        var (rows, cols) = Windows(s, K, K);
        int C = s.In.C, H = s.In.H, W = s.In.W, Ho = s.Out.H, Wo = s.Out.W;
        for (int n = 0; n < batch; n++)
        for (int c = 0; c < C; c++)
        for (int oh = 0; oh < Ho; oh++)
        for (int ow = 0; ow < Wo; ow++)
        {
            double best = double.NegativeInfinity;
            int where = -1;
            for (int kh = 0; kh < K; kh++)
            for (int kw = 0; kw < K; kw++)
            {
                int ih = Source(oh, s.Layer.Stride, rows.PadBefore, kh, H), iw = Source(ow, s.Layer.Stride, cols.PadBefore, kw, W);
                if (ih < 0 || iw < 0) continue;
                int index = ((n * C + c) * H + ih) * W + iw;
                if (where < 0 || x[index] > best) { best = x[index]; where = index; }
            }
            int o = ((n * C + c) * Ho + oh) * Wo + ow;
            y[o] = best;
            if (argmax != null) argmax[o] = where;
        }
    }

    /// <summary>The divisor of one average-pooling window: with integer padding PyTorch's count_include_pad
    /// (cells of the window inside the padded input), with Same padding Keras' count of real cells.</summary>
    private static int AvgDivisor(Step s, AxisWindow rows, AxisWindow cols, int oh, int ow)
    {
        int K = s.Layer.Size, stride = s.Layer.Stride, H = s.In.H, W = s.In.W;
        bool same = s.Layer.Padding == Unrolled.Padding.Same;
        int count = 0;
        for (int kh = 0; kh < K; kh++)
        for (int kw = 0; kw < K; kw++)
        {
            int ph = oh * stride - rows.PadBefore + kh, pw = ow * stride - cols.PadBefore + kw;
            bool inPadded = ph >= -rows.PadBefore && ph < H + rows.PadAfter && pw >= -cols.PadBefore && pw < W + cols.PadAfter;
            bool real = ph >= 0 && ph < H && pw >= 0 && pw < W;
            if (same ? real : inPadded) count++;
        }
        return count;
    }

    private static void AvgPoolForward(Step s, double[] x, double[] y, int batch)
    {
        int K = s.Layer.Size;
        var (rows, cols) = Windows(s, K, K);
        int C = s.In.C, H = s.In.H, W = s.In.W, Ho = s.Out.H, Wo = s.Out.W;
        for (int n = 0; n < batch; n++)
        for (int c = 0; c < C; c++)
        for (int oh = 0; oh < Ho; oh++)
        for (int ow = 0; ow < Wo; ow++)
        {
            double sum = 0;
            for (int kh = 0; kh < K; kh++)
            for (int kw = 0; kw < K; kw++)
            {
                int ih = Source(oh, s.Layer.Stride, rows.PadBefore, kh, H), iw = Source(ow, s.Layer.Stride, cols.PadBefore, kw, W);
                if (ih >= 0 && iw >= 0) sum += x[((n * C + c) * H + ih) * W + iw];
            }
            y[((n * C + c) * Ho + oh) * Wo + ow] = sum / AvgDivisor(s, rows, cols, oh, ow);
        }
    }

    private static void GlobalAvgPoolForward(Step s, double[] x, double[] y, int batch)
    {
        int C = s.In.C, plane = s.In.H * s.In.W;
        for (int n = 0; n < batch; n++)
        for (int c = 0; c < C; c++)
        {
            double sum = 0;
            for (int i = 0; i < plane; i++) sum += x[(n * C + c) * plane + i];
            y[n * C + c] = sum / plane;
        }
    }

    /// <summary>Channels and the number of values per channel per sample (H·W, or 1 after a vector shape).</summary>
    private static (int Channels, int Plane) BatchNormGeometry(Step s) => (s.In.C, s.In.IsVector ? 1 : s.In.H * s.In.W);

    private static void BatchNormInferenceForward(Step s, double[] p, double[] buffers, double[] x, double[] y, int batch)
    {
        var (C, plane) = BatchNormGeometry(s);
        for (int n = 0; n < batch; n++)
        for (int c = 0; c < C; c++)
        {
            double mean = buffers[s.BufferOffset + c], variance = buffers[s.BufferOffset + C + c];
            double gamma = p[s.WeightOffset + c], beta = p[s.BiasOffset + c];
            for (int i = 0; i < plane; i++)
            {
                int index = (n * C + c) * plane + i;
                y[index] = gamma * (x[index] - mean) / Math.Sqrt(variance + BatchNormEps) + beta;
            }
        }
    }

    private static (double Mean, double BiasedVariance) BatchStatistics(Step s, double[] x, int batch, int c)
    {
        var (C, plane) = BatchNormGeometry(s);
        int count = batch * plane;
        double sum = 0;
        for (int n = 0; n < batch; n++)
        for (int i = 0; i < plane; i++) sum += x[(n * C + c) * plane + i];
        double mean = sum / count;
        double squares = 0;
        for (int n = 0; n < batch; n++)
        for (int i = 0; i < plane; i++) squares += Math.Pow(x[(n * C + c) * plane + i] - mean, 2);
        return (mean, squares / count);
    }

    private static void BatchNormTrainForward(Step s, double[] p, double[] updatedBuffers, double[] x, double[] y, int batch)
    {
        var (C, plane) = BatchNormGeometry(s);
        int count = batch * plane;
        for (int c = 0; c < C; c++)
        {
            var (mean, variance) = BatchStatistics(s, x, batch, c);
            double gamma = p[s.WeightOffset + c], beta = p[s.BiasOffset + c];
            for (int n = 0; n < batch; n++)
            for (int i = 0; i < plane; i++)
            {
                int index = (n * C + c) * plane + i;
                y[index] = gamma * (x[index] - mean) / Math.Sqrt(variance + BatchNormEps) + beta;
            }
            double unbiased = count > 1 ? variance * count / (count - 1) : double.NaN;
            ref double runningMean = ref updatedBuffers[s.BufferOffset + c];
            ref double runningVar = ref updatedBuffers[s.BufferOffset + C + c];
            runningMean = (1 - BatchNormMomentum) * runningMean + BatchNormMomentum * mean;
            runningVar = (1 - BatchNormMomentum) * runningVar + BatchNormMomentum * unbiased;
        }
    }

    /// <summary>The channels c − n/2 … c + (n − 1)/2 of LRN's neighbourhood, clipped to those that exist.</summary>
    private static IEnumerable<int> LrnNeighbours(int c, int size, int channels)
    {
        for (int j = c - size / 2; j <= c + (size - 1) / 2; j++)
            if (j >= 0 && j < channels) yield return j;
    }

    /// <summary>LRN's denominator base k + α/n · Σ a_j² at one position.</summary>
    private static double LrnScale(Step s, double[] x, int n, int c, int position)
    {
        int C = s.In.C, plane = s.In.H * s.In.W;
        double squares = 0;
        foreach (int j in LrnNeighbours(c, s.Layer.Size, C)) squares += Math.Pow(x[(n * C + j) * plane + position], 2);
        return s.Layer.K + s.Layer.Alpha / s.Layer.Size * squares;
    }

    private static void LrnForward(Step s, double[] x, double[] y, int batch)
    {
        int C = s.In.C, plane = s.In.H * s.In.W;
        for (int n = 0; n < batch; n++)
        for (int c = 0; c < C; c++)
        for (int i = 0; i < plane; i++)
        {
            int index = (n * C + c) * plane + i;
            y[index] = x[index] / Math.Pow(LrnScale(s, x, n, c, i), s.Layer.Beta);
        }
    }

    private static void SoftmaxForward(int features, double[] x, double[] y, int batch)
    {
        for (int n = 0; n < batch; n++)
        {
            double max = double.NegativeInfinity;
            for (int i = 0; i < features; i++) max = Math.Max(max, x[n * features + i]);
            double sum = 0;
            for (int i = 0; i < features; i++) sum += Math.Exp(x[n * features + i] - max);
            for (int i = 0; i < features; i++) y[n * features + i] = Math.Exp(x[n * features + i] - max) / sum;
        }
    }

    // ------------------------------------------------------------------ losses

    /// <summary>The batch-mean loss of a training-mode forward.</summary>
    public double Loss(double[] parameters, double[] buffers, double[] input, Targets targets,
        IReadOnlyDictionary<int, bool[]>? dropoutMasks = null)
    {
        var trace = Run(parameters, buffers, input, training: true, dropoutMasks);
        return LossAndOutputGradient(trace, targets, out _, out _);
    }

    /// <summary>Computes the loss and the gradient with respect to the output of step <paramref name="fromStep"/> − 1
    /// (the logits before a fused Softmax, otherwise the network's output).</summary>
    private double LossAndOutputGradient(Trace trace, Targets targets, out double[] gradient, out int fromStep)
    {
        int batch = trace.Batch;
        if (Decl.Loss == Unrolled.Loss.CrossEntropy)
        {
            int[] labels = targets.Labels ?? throw new ArgumentException("cross-entropy needs integer labels");
            if (labels.Length != batch) throw new ArgumentException("one label per sample");
            fromStep = FusedSoftmax ? _steps.Count - 1 : _steps.Count;
            double[] logits = trace.Activations[fromStep];
            int classes = OutputSize;
            gradient = new double[logits.Length];
            double loss = 0;
            for (int n = 0; n < batch; n++)
            {
                int label = labels[n];
                if (label < 0 || label >= classes) throw new ArgumentOutOfRangeException(nameof(targets), $"label {label} outside [0, {classes})");
                double max = double.NegativeInfinity;
                for (int i = 0; i < classes; i++) max = Math.Max(max, logits[n * classes + i]);
                double sum = 0;
                for (int i = 0; i < classes; i++) sum += Math.Exp(logits[n * classes + i] - max);
                double logSum = max + Math.Log(sum);
                loss += logSum - logits[n * classes + label];
                for (int i = 0; i < classes; i++)
                {
                    double probability = Math.Exp(logits[n * classes + i] - logSum);
                    gradient[n * classes + i] = (probability - (i == label ? 1 : 0)) / batch;
                }
            }
            return loss / batch;
        }
        else
        {
            double[] values = targets.Values ?? throw new ArgumentException("mean squared error needs float targets");
            double[] output = trace.Activations[^1];
            if (values.Length != output.Length) throw new ArgumentException("one target per output value");
            fromStep = _steps.Count;
            gradient = new double[output.Length];
            double loss = 0;
            for (int i = 0; i < output.Length; i++)
            {
                double difference = output[i] - values[i];
                loss += difference * difference;
                gradient[i] = 2 * difference / output.Length;
            }
            return loss / output.Length;
        }
    }

    // ------------------------------------------------------------------ backward

    /// <summary>Training-mode forward, loss and analytic backward: the gradient of the batch-mean loss with
    /// respect to every parameter, and the running statistics after the step.</summary>
    /// <param name="roundingNoise">When given, every step's output, forward and backward, is multiplied by a
    /// random 1 ± <see cref="FloatUlp"/>, to measure how much float32 arithmetic can move the result of this
    /// network at these values.</param>
    public ReferenceGradient Backward(double[] parameters, double[] buffers, double[] input, Targets targets,
        IReadOnlyDictionary<int, bool[]>? dropoutMasks = null, Random? roundingNoise = null)
    {
        var trace = Run(parameters, buffers, input, training: true, dropoutMasks, roundingNoise);
        double loss = LossAndOutputGradient(trace, targets, out double[] dy, out int fromStep);
        AddRoundingNoise(dy, roundingNoise);
        var grads = new double[ParameterCount];
        int batch = trace.Batch;
        for (int k = fromStep - 1; k >= 0; k--)
        {
            var s = _steps[k];
            double[] x = trace.Activations[k], y = trace.Activations[k + 1];
            double[] dx = new double[x.Length];
            switch (s.Layer.Kind)
            {
                case LayerKind.Conv2D: ConvBackward(s, parameters, x, dy, dx, grads, batch); break;
                case LayerKind.Dense: DenseBackward(s, parameters, x, dy, dx, grads, batch); break;
                case LayerKind.MaxPool2D:
                {
                    var argmax = new int[y.Length];
                    MaxPoolForward(s, x, new double[y.Length], batch, argmax);
                    for (int o = 0; o < y.Length; o++) dx[argmax[o]] += dy[o];
                    break;
                }
                case LayerKind.AvgPool2D: AvgPoolBackward(s, dy, dx, batch); break;
                case LayerKind.GlobalAvgPool2D:
                {
                    int C = s.In.C, plane = s.In.H * s.In.W;
                    for (int n = 0; n < batch; n++)
                    for (int c = 0; c < C; c++)
                    for (int i = 0; i < plane; i++) dx[(n * C + c) * plane + i] = dy[n * C + c] / plane;
                    break;
                }
                case LayerKind.Flatten: Array.Copy(dy, dx, dy.Length); break;
                case LayerKind.BatchNorm: BatchNormBackward(s, parameters, x, dy, dx, grads, batch); break;
                case LayerKind.Dropout:
                {
                    bool[]? mask = dropoutMasks != null && dropoutMasks.TryGetValue(s.LayerIndex, out var m) ? m : null;
                    for (int i = 0; i < dx.Length; i++) dx[i] = mask == null ? dy[i] : mask[i] ? dy[i] / (1 - s.Layer.P) : 0;
                    break;
                }
                case LayerKind.LocalResponseNorm: LrnBackward(s, x, dy, dx, batch); break;
                case LayerKind.ReLU: for (int i = 0; i < dx.Length; i++) dx[i] = x[i] > 0 ? dy[i] : 0; break;
                case LayerKind.LeakyReLU: for (int i = 0; i < dx.Length; i++) dx[i] = x[i] > 0 ? dy[i] : s.Layer.Slope * dy[i]; break;
                case LayerKind.Sigmoid: for (int i = 0; i < dx.Length; i++) dx[i] = dy[i] * y[i] * (1 - y[i]); break;
                case LayerKind.Tanh: for (int i = 0; i < dx.Length; i++) dx[i] = dy[i] * (1 - y[i] * y[i]); break;
                case LayerKind.Softmax:
                {
                    int features = s.In.Size;
                    for (int n = 0; n < batch; n++)
                    {
                        double dot = 0;
                        for (int i = 0; i < features; i++) dot += dy[n * features + i] * y[n * features + i];
                        for (int i = 0; i < features; i++) dx[n * features + i] = y[n * features + i] * (dy[n * features + i] - dot);
                    }
                    break;
                }
                default: throw new NotSupportedException(s.Layer.Kind.ToString());
            }
            AddRoundingNoise(dx, roundingNoise);
            dy = dx;
        }
        return new ReferenceGradient(loss, grads, trace.UpdatedBuffers);
    }

    private static void ConvBackward(Step s, double[] p, double[] x, double[] dy, double[] dx, double[] grads, int batch)
    {
        var L = s.Layer;
        var (rows, cols) = Windows(s, L.KernelHeight, L.KernelWidth);
        int C = s.In.C, H = s.In.H, W = s.In.W, F = s.Out.C, Ho = s.Out.H, Wo = s.Out.W;
        for (int n = 0; n < batch; n++)
        for (int f = 0; f < F; f++)
        for (int oh = 0; oh < Ho; oh++)
        for (int ow = 0; ow < Wo; ow++)
        {
            double g = dy[((n * F + f) * Ho + oh) * Wo + ow];
            if (s.BiasOffset >= 0) grads[s.BiasOffset + f] += g;
            for (int c = 0; c < C; c++)
            for (int kh = 0; kh < L.KernelHeight; kh++)
            {
                int ih = Source(oh, L.Stride, rows.PadBefore, kh, H);
                if (ih < 0) continue;
                for (int kw = 0; kw < L.KernelWidth; kw++)
                {
                    int iw = Source(ow, L.Stride, cols.PadBefore, kw, W);
                    if (iw < 0) continue;
                    int xi = ((n * C + c) * H + ih) * W + iw;
                    int wi = s.WeightOffset + ((f * C + c) * L.KernelHeight + kh) * L.KernelWidth + kw;
                    grads[wi] += g * x[xi];
                    dx[xi] += g * p[wi];
                }
            }
        }
    }

    private static void DenseBackward(Step s, double[] p, double[] x, double[] dy, double[] dx, double[] grads, int batch)
    {
        int inputs = s.In.Size, units = s.Out.Size;
        for (int n = 0; n < batch; n++)
        for (int u = 0; u < units; u++)
        {
            double g = dy[n * units + u];
            if (s.BiasOffset >= 0) grads[s.BiasOffset + u] += g;
            for (int i = 0; i < inputs; i++)
            {
                grads[s.WeightOffset + u * inputs + i] += g * x[n * inputs + i];
                dx[n * inputs + i] += g * p[s.WeightOffset + u * inputs + i];
            }
        }
    }

    private static void AvgPoolBackward(Step s, double[] dy, double[] dx, int batch)
    {
        int K = s.Layer.Size;
        var (rows, cols) = Windows(s, K, K);
        int C = s.In.C, H = s.In.H, W = s.In.W, Ho = s.Out.H, Wo = s.Out.W;
        for (int n = 0; n < batch; n++)
        for (int c = 0; c < C; c++)
        for (int oh = 0; oh < Ho; oh++)
        for (int ow = 0; ow < Wo; ow++)
        {
            double share = dy[((n * C + c) * Ho + oh) * Wo + ow] / AvgDivisor(s, rows, cols, oh, ow);
            for (int kh = 0; kh < K; kh++)
            for (int kw = 0; kw < K; kw++)
            {
                int ih = Source(oh, s.Layer.Stride, rows.PadBefore, kh, H), iw = Source(ow, s.Layer.Stride, cols.PadBefore, kw, W);
                if (ih >= 0 && iw >= 0) dx[((n * C + c) * H + ih) * W + iw] += share;
            }
        }
    }

    /// <summary>Batch norm with batch statistics: x̂ = (x − μ)/√(σ² + ε), y = γx̂ + β, and μ, σ² depend on x, so
    /// dx = γ/(M√(σ² + ε)) · (M·dy − Σdy − x̂·Σ(dy·x̂)) with M the values per channel in the batch.</summary>
    private static void BatchNormBackward(Step s, double[] p, double[] x, double[] dy, double[] dx, double[] grads, int batch)
    {
        var (C, plane) = BatchNormGeometry(s);
        int count = batch * plane;
        for (int c = 0; c < C; c++)
        {
            var (mean, variance) = BatchStatistics(s, x, batch, c);
            double inverseStd = 1 / Math.Sqrt(variance + BatchNormEps);
            double sumDy = 0, sumDyXhat = 0;
            for (int n = 0; n < batch; n++)
            for (int i = 0; i < plane; i++)
            {
                int index = (n * C + c) * plane + i;
                sumDy += dy[index];
                sumDyXhat += dy[index] * (x[index] - mean) * inverseStd;
            }
            grads[s.WeightOffset + c] += sumDyXhat;
            grads[s.BiasOffset + c] += sumDy;
            double gamma = p[s.WeightOffset + c];
            for (int n = 0; n < batch; n++)
            for (int i = 0; i < plane; i++)
            {
                int index = (n * C + c) * plane + i;
                double xhat = (x[index] - mean) * inverseStd;
                dx[index] = gamma * inverseStd / count * (count * dy[index] - sumDy - xhat * sumDyXhat);
            }
        }
    }

    /// <summary>b_c = a_c · d_c^(−β) with d_c = k + α/n Σ_{j∈N(c)} a_j², so
    /// ∂b_c/∂a_j = [c = j]·d_c^(−β) − 2αβ/n · a_c · a_j · d_c^(−β−1) for j ∈ N(c).</summary>
    private static void LrnBackward(Step s, double[] x, double[] dy, double[] dx, int batch)
    {
        int C = s.In.C, plane = s.In.H * s.In.W;
        double alpha = s.Layer.Alpha, beta = s.Layer.Beta;
        int size = s.Layer.Size;
        for (int n = 0; n < batch; n++)
        for (int c = 0; c < C; c++)
        for (int i = 0; i < plane; i++)
        {
            int ic = (n * C + c) * plane + i;
            double d = LrnScale(s, x, n, c, i);
            dx[ic] += dy[ic] * Math.Pow(d, -beta);
            double common = dy[ic] * x[ic] * 2 * alpha * beta / size * Math.Pow(d, -beta - 1);
            foreach (int j in LrnNeighbours(c, size, C))
            {
                int ij = (n * C + j) * plane + i;
                dx[ij] -= common * x[ij];
            }
        }
    }

    // ------------------------------------------------------------------ finite differences

    /// <summary>Central finite differences of the training-mode batch-mean loss, one parameter at a time.</summary>
    public double[] FiniteDifferenceGradient(double[] parameters, double[] buffers, double[] input, Targets targets,
        IReadOnlyDictionary<int, bool[]>? dropoutMasks = null, double step = 1e-5)
    {
        var p = (double[])parameters.Clone();
        var gradient = new double[p.Length];
        for (int i = 0; i < p.Length; i++)
        {
            double saved = p[i];
            p[i] = saved + step;
            double plus = Loss(p, buffers, input, targets, dropoutMasks);
            p[i] = saved - step;
            double minus = Loss(p, buffers, input, targets, dropoutMasks);
            p[i] = saved;
            gradient[i] = (plus - minus) / (2 * step);
        }
        return gradient;
    }

    /// <summary>Random keep-masks for every dropout layer (keep with probability 1 − p), keyed by layer index.</summary>
    public Dictionary<int, bool[]> RandomDropoutMasks(int batch, Random rng)
    {
        var masks = new Dictionary<int, bool[]>();
        foreach (var s in _steps.Where(s => s.Layer.Kind == LayerKind.Dropout))
            masks[s.LayerIndex] = Enumerable.Range(0, batch * s.In.Size).Select(_ => rng.NextDouble() >= s.Layer.P).ToArray();
        return masks;
    }

    // ------------------------------------------------------------------ random values

    /// <summary>Random parameters like PyTorch's default initialisation (uniform ±1/√fan_in for weights and
    /// biases), with batch-norm γ in [0.5, 1.5] and β in [−0.5, 0.5] so that they matter.</summary>
    public double[] RandomParameters(Random rng)
    {
        var p = new double[ParameterCount];
        foreach (var s in _steps)
        {
            switch (s.Layer.Kind)
            {
                case LayerKind.Conv2D:
                case LayerKind.Dense:
                {
                    int fanIn = s.Layer.Kind == LayerKind.Conv2D ? s.In.C * s.Layer.KernelHeight * s.Layer.KernelWidth : s.In.Size;
                    int outputs = s.Layer.Kind == LayerKind.Conv2D ? s.Layer.Filters : s.Layer.Units;
                    double bound = 1 / Math.Sqrt(fanIn);
                    for (int i = 0; i < outputs * fanIn; i++) p[s.WeightOffset + i] = bound * (2 * rng.NextDouble() - 1);
                    if (s.BiasOffset >= 0)
                        for (int i = 0; i < outputs; i++) p[s.BiasOffset + i] = bound * (2 * rng.NextDouble() - 1);
                    break;
                }
                case LayerKind.BatchNorm:
                    for (int c = 0; c < s.In.C; c++)
                    {
                        p[s.WeightOffset + c] = 0.5 + rng.NextDouble();
                        p[s.BiasOffset + c] = rng.NextDouble() - 0.5;
                    }
                    break;
            }
        }
        return p;
    }

    /// <summary>Random running statistics: means in [−0.5, 0.5], variances in [0.5, 2].</summary>
    public double[] RandomBuffers(Random rng)
    {
        var b = new double[BufferCount];
        foreach (var s in _steps.Where(s => s.Layer.Kind == LayerKind.BatchNorm))
            for (int c = 0; c < s.In.C; c++)
            {
                b[s.BufferOffset + c] = rng.NextDouble() - 0.5;
                b[s.BufferOffset + s.In.C + c] = 0.5 + 1.5 * rng.NextDouble();
            }
        return b;
    }
}
