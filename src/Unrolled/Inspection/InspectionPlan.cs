using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;

namespace Unrolled.Inspection;

/// <summary>One layer as the interpreter runs it: its description and where its tensors live.</summary>
internal sealed class InterpretedLayer
{
    public required LayerDescription Description { get; init; }
    public required int Index { get; init; }
    /// <summary>Offset of the weight (Conv2D, Dense, BatchNorm γ) in <see cref="INetwork.Parameters"/>, or −1.</summary>
    public int Weight { get; init; } = -1;
    /// <summary>Offset of the bias (Conv2D, Dense, BatchNorm β) in <see cref="INetwork.Parameters"/>, or −1.</summary>
    public int Bias { get; init; } = -1;
    /// <summary>Offset of running_mean in <see cref="INetwork.Buffers"/>, or −1.</summary>
    public int RunningMean { get; init; } = -1;
    /// <summary>Offset of running_var in <see cref="INetwork.Buffers"/>, or −1.</summary>
    public int RunningVar { get; init; } = -1;
    /// <summary>The element-wise activation this layer applies last: the fused one of Conv2D and Dense, the layer's
    /// own for ReLU, LeakyReLU, Sigmoid and Tanh, otherwise None.</summary>
    public Activation Activation { get; init; }
    /// <summary>LeakyReLU's negative slope (fused or standalone).</summary>
    public float Slope { get; init; }
    /// <summary>Conv2D or Dense with a fused activation: the pre-activation is kept for the backward pass.</summary>
    public bool KeepsPreActivation => Activation != Activation.None && Description.Type is LayerType.Conv2D or LayerType.Dense;
    /// <summary>Per-sample offset of this layer's output in the activation scratch.</summary>
    public int OutputOffset { get; set; }
    /// <summary>Per-sample offset of the pre-activation in the activation scratch, or −1.</summary>
    public int PreActivationOffset { get; set; } = -1;
}

/// <summary>
/// The interpreter's view of one network, resolved once from <see cref="INetwork.Layers"/> and
/// <see cref="INetwork.Tensors"/> and cached per instance. Immutable, so any number of threads share it.
/// </summary>
internal sealed class InspectionPlan
{
    private static readonly ConditionalWeakTable<INetwork, InspectionPlan> Cache = new();

    public InterpretedLayer[] Layers { get; }
    public int InputSize { get; }
    public int OutputSize { get; }
    /// <summary>Floats of every layer's output (and kept pre-activations) for one sample.</summary>
    public int ActivationLength { get; }
    /// <summary>The largest per-sample size among the input and every layer's output.</summary>
    public int MaxSize { get; }
    /// <summary>Scratch the layers need: a convolution's patch matrix (C·Kh·Kw × Ho·Wo), LocalResponseNorm's two
    /// copies of its input; the largest.</summary>
    public int LayerScratch { get; }
    /// <summary>Floats of scratch one sample needs: activations, two gradient buffers, layer scratch.</summary>
    public int ScratchLength => ActivationLength + 2 * MaxSize + LayerScratch;
    public string[] Names { get; }

    private InspectionPlan(INetwork network)
    {
        var layers = network.Layers;
        if (layers == null || layers.Count == 0)
            throw new NotSupportedException(
                $"The network '{network.NetworkName}' ({network.GetType().FullName}) does not describe its layers (INetwork.Layers is empty), " +
                "so it cannot be inspected; networks compiled by the Unrolled generator describe theirs.");

        var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        foreach (var t in network.Tensors) tensors[t.Name] = t;

        InputSize = network.InputSize;
        OutputSize = network.OutputSize;
        Layers = new InterpretedLayer[layers.Count];
        Names = new string[layers.Count];
        int offset = 0, maxSize = InputSize, lrn = 0, previous = InputSize;
        for (int i = 0; i < layers.Count; i++)
        {
            var d = layers[i] ?? throw new NotSupportedException($"INetwork.Layers[{i}] is null.");
            if (d.Input.Size != previous)
                throw new NotSupportedException(
                    $"Layer {i} ('{d.Name}') takes {d.Input} ({d.Input.Size} floats) but receives {previous} floats; the layer list is inconsistent.");
            Check(d.Output.Size > 0, d, i, "has an empty output");
            var layer = Resolve(d, i, tensors);
            layer.OutputOffset = offset;
            offset += d.Output.Size;
            if (layer.KeepsPreActivation)
            {
                layer.PreActivationOffset = offset;
                offset += d.Output.Size;
            }
            if (d.Type == LayerType.LocalResponseNorm) lrn = Math.Max(lrn, 2 * d.Input.Size);
            if (d.Type == LayerType.Conv2D) lrn = Math.Max(lrn, Interpreter.PatchLength(d));
            maxSize = Math.Max(maxSize, d.Output.Size);
            previous = d.Output.Size;
            Layers[i] = layer;
            Names[i] = d.Name;
        }
        if (previous != OutputSize)
            throw new NotSupportedException($"The last layer gives {previous} floats but the network's OutputSize is {OutputSize}.");
        ActivationLength = offset;
        MaxSize = maxSize;
        LayerScratch = lrn;
    }

    public static InspectionPlan For(INetwork network)
    {
        ArgumentNullException.ThrowIfNull(network);
        return Cache.GetValue(network, static n => new InspectionPlan(n));
    }

    private static void Check(bool condition, LayerDescription d, int i, string what)
    {
        if (!condition) throw new NotSupportedException($"Layer {i} ('{d.Name}', {d.Type}) {what}.");
    }

    private static int Tensor(Dictionary<string, TensorInfo> tensors, string name, TensorKind kind, int length, LayerDescription d, int i)
    {
        if (!tensors.TryGetValue(name, out var t))
            throw new NotSupportedException($"Layer {i} ('{d.Name}', {d.Type}) needs the tensor '{name}', which INetwork.Tensors does not list.");
        if (t.Kind != kind || t.Length != length)
            throw new NotSupportedException($"The tensor '{name}' is a {t.Kind} of {t.Length} floats; layer {i} ('{d.Name}') needs a {kind} of {length}.");
        return t.Offset;
    }

    private static InterpretedLayer Resolve(LayerDescription d, int i, Dictionary<string, TensorInfo> tensors)
    {
        var inp = d.Input;
        var outp = d.Output;
        switch (d.Type)
        {
            case LayerType.Conv2D:
            {
                Check(!inp.IsVector && !outp.IsVector, d, i, "needs 3-D shapes");
                Check(d.KernelH > 0 && d.KernelW > 0 && d.Stride > 0, d, i, "has no kernel or stride");
                Check(outp.H == (inp.H + d.PadTop + d.PadBottom - d.KernelH) / d.Stride + 1
                      && outp.W == (inp.W + d.PadLeft + d.PadRight - d.KernelW) / d.Stride + 1, d, i, "has an output shape that does not follow from its window");
                return new InterpretedLayer
                {
                    Description = d, Index = i,
                    Weight = Tensor(tensors, d.Name + ".weight", TensorKind.Parameter, outp.C * inp.C * d.KernelH * d.KernelW, d, i),
                    Bias = d.HasBias ? Tensor(tensors, d.Name + ".bias", TensorKind.Parameter, outp.C, d, i) : -1,
                    Activation = d.Activation, Slope = (float)d.Slope,
                };
            }
            case LayerType.Dense:
                return new InterpretedLayer
                {
                    Description = d, Index = i,
                    Weight = Tensor(tensors, d.Name + ".weight", TensorKind.Parameter, outp.Size * inp.Size, d, i),
                    Bias = d.HasBias ? Tensor(tensors, d.Name + ".bias", TensorKind.Parameter, outp.Size, d, i) : -1,
                    Activation = d.Activation, Slope = (float)d.Slope,
                };
            case LayerType.MaxPool2D:
            case LayerType.AvgPool2D:
                Check(!inp.IsVector && !outp.IsVector && outp.C == inp.C, d, i, "needs 3-D shapes with as many channels out as in");
                Check(d.KernelH > 0 && d.KernelW > 0 && d.Stride > 0, d, i, "has no window or stride");
                Check(outp.H == (inp.H + d.PadTop + d.PadBottom - d.KernelH) / d.Stride + 1
                      && outp.W == (inp.W + d.PadLeft + d.PadRight - d.KernelW) / d.Stride + 1, d, i, "has an output shape that does not follow from its window");
                return new InterpretedLayer { Description = d, Index = i };
            case LayerType.GlobalAvgPool2D:
                Check(outp.Size == inp.C, d, i, "must give one value per channel");
                return new InterpretedLayer { Description = d, Index = i };
            case LayerType.BatchNorm:
                Check(outp.Size == inp.Size, d, i, "must keep its shape");
                return new InterpretedLayer
                {
                    Description = d, Index = i,
                    Weight = Tensor(tensors, d.Name + ".weight", TensorKind.Parameter, inp.C, d, i),
                    Bias = Tensor(tensors, d.Name + ".bias", TensorKind.Parameter, inp.C, d, i),
                    RunningMean = Tensor(tensors, d.Name + ".running_mean", TensorKind.Buffer, inp.C, d, i),
                    RunningVar = Tensor(tensors, d.Name + ".running_var", TensorKind.Buffer, inp.C, d, i),
                };
            case LayerType.Flatten:
            case LayerType.Dropout:
            case LayerType.Softmax:
                Check(outp.Size == inp.Size, d, i, "must keep its size");
                return new InterpretedLayer { Description = d, Index = i };
            case LayerType.LocalResponseNorm:
                Check(outp.Size == inp.Size && d.LrnSize > 0, d, i, "must keep its shape and have a window");
                return new InterpretedLayer { Description = d, Index = i };
            case LayerType.ReLU:
            case LayerType.LeakyReLU:
            case LayerType.Sigmoid:
            case LayerType.Tanh:
                Check(outp.Size == inp.Size, d, i, "must keep its size");
                return new InterpretedLayer
                {
                    Description = d, Index = i, Slope = (float)d.Slope,
                    Activation = d.Type switch
                    {
                        LayerType.ReLU => Activation.ReLU,
                        LayerType.LeakyReLU => Activation.LeakyReLU,
                        LayerType.Sigmoid => Activation.Sigmoid,
                        _ => Activation.Tanh,
                    },
                };
            default:
                throw new NotSupportedException($"Layer {i} ('{d.Name}') is of kind {d.Type}, which the interpreter does not know.");
        }
    }
}
