using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Unrolled.Formats.Onnx.Proto;

namespace Unrolled;

/// <summary>Writes a network as an ONNX model (inference mode).</summary>
/// <remarks>
/// The model imports opset 13 of the default domain (IR version 7), has one input named <c>input</c> of shape
/// [N, C, H, W] (or [N, F] for a vector input) and one output named <c>output</c>, N being a dynamic batch axis,
/// and holds every parameter and batch-norm statistic as an initializer named by its state_dict key
/// (<c>conv1.weight</c>). Operators: Conv, Gemm (transB = 1), Flatten, MaxPool, AveragePool, GlobalAveragePool,
/// BatchNormalization, LRN, Relu, LeakyRelu, Sigmoid, Tanh, Softmax (axis 1). Dropout is left out (identity in
/// inference). Same padding is written as explicit pads. A layer ONNX cannot express exactly is refused with a
/// <see cref="NotSupportedException"/> naming it, before anything is written. LRN of odd size is ONNX LRN; of even size,
/// whose window ONNX LRN shifts by one channel from PyTorch's, it is written out as Mul, Reshape, Conv (a ones window),
/// Reshape, Mul, Add, Pow and Mul, computing PyTorch's window exactly.
/// </remarks>
public static class OnnxExport
{
    /// <summary>The opset of the default ONNX domain the exported models import.</summary>
    public const int Opset = 13;

    /// <summary>The doc_string of a Conv or pooling node whose layer was declared with <c>Padding.Same</c>.</summary>
    internal const string SamePaddingDoc = "padding: same";

    /// <summary>Writes <paramref name="network"/> to <paramref name="path"/> as an ONNX model. Nothing is written when
    /// the network cannot be exported.</summary>
    /// <exception cref="NotSupportedException">A layer ONNX cannot express as this network computes it.</exception>
    public static void SaveOnnx(this INetwork network, string path)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes = Build(network).ToByteArray(); // throws before the file is created
        File.WriteAllBytes(path, bytes);
    }

    /// <summary>Writes <paramref name="network"/> to <paramref name="stream"/> as an ONNX model. Nothing is written when
    /// the network cannot be exported.</summary>
    /// <exception cref="NotSupportedException">A layer ONNX cannot express as this network computes it.</exception>
    public static void SaveOnnx(this INetwork network, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(stream);
        byte[] bytes = Build(network).ToByteArray();
        stream.Write(bytes, 0, bytes.Length);
    }

    internal static ModelProto Build(INetwork network)
    {
        IReadOnlyList<LayerDescription> layers = network.Layers;
        if (layers.Count == 0) throw new NotSupportedException("ONNX export: the network has no layers.");
        var graph = new GraphProto { Name = network.NetworkName };
        graph.Input.Add(Value("input", layers[0].Input));
        graph.Output.Add(Value("output", layers[layers.Count - 1].Output));

        // Initializers: every float tensor under its state_dict name (num_batches_tracked is training state).
        var tensors = new Dictionary<string, TensorInfo?>(StringComparer.Ordinal); // every initializer name (null: an exporter constant)
        foreach (TensorInfo t in network.Tensors)
        {
            if (t.Kind == TensorKind.Counter) continue;
            tensors[t.Name] = t;
            ReadOnlySpan<float> data = (t.Kind == TensorKind.Parameter ? network.Parameters : network.Buffers).Slice(t.Offset, t.Length);
            var init = new TensorProto { Name = t.Name, DataType = (int)TensorProto.Types.DataType.Float };
            foreach (int d in t.Shape) init.Dims.Add(d);
            init.RawData = ByteString.CopyFrom(LittleEndianBytes(data));
            graph.Initializer.Add(init);
        }

        string current = "input";
        bool image = !layers[0].Input.IsVector; // whether the ONNX value is 4-D [N, C, H, W]
        int counter = 0;
        NodeProto Node(string op, string name, params string[] inputs)
        {
            var node = new NodeProto { OpType = op, Name = name };
            node.Input.AddRange(inputs);
            string output = name;
            while (tensors.ContainsKey(output)) output = name + "_" + (++counter).ToString(CultureInfo.InvariantCulture);
            node.Output.Add(output);
            graph.Node.Add(node);
            current = output;
            return node;
        }
        string Param(LayerDescription l, string suffix)
        {
            string name = l.Name + "." + suffix;
            if (!tensors.ContainsKey(name)) throw new NotSupportedException($"ONNX export: layer '{l.Name}' has no tensor '{name}'.");
            return name;
        }
        void Activation(LayerDescription l, Activation a)
        {
            switch (a)
            {
                case Unrolled.Activation.None: break;
                case Unrolled.Activation.ReLU: Node("Relu", l.Name + ".relu", current); break;
                case Unrolled.Activation.LeakyReLU: Node("LeakyRelu", l.Name + ".leakyrelu", current).Attribute.Add(Float("alpha", l.Slope)); break;
                case Unrolled.Activation.Sigmoid: Node("Sigmoid", l.Name + ".sigmoid", current); break;
                case Unrolled.Activation.Tanh: Node("Tanh", l.Name + ".tanh", current); break;
                default: throw new NotSupportedException($"ONNX export: layer '{l.Name}' has an unknown activation {a}.");
            }
        }
        void Window(NodeProto node, LayerDescription l)
        {
            node.Attribute.Add(Ints("kernel_shape", l.KernelH, l.KernelW));
            node.Attribute.Add(Ints("strides", l.Stride, l.Stride));
            node.Attribute.Add(Ints("pads", l.PadTop, l.PadLeft, l.PadBottom, l.PadRight)); // begins, then ends
            // A hint for the importer: declared Padding.Same (the pads alone cannot tell a symmetric Same from an integer).
            if (l.SamePadding) node.DocString = SamePaddingDoc;
        }

        // ONNX LRN sums channels c − (n − 1)/2 … c + n/2 (floor, ceil), PyTorch c − n/2 … c + (n − 1)/2: the same
        // window for odd n, shifted by one for even n. Then the exact PyTorch window is written out: the squares,
        // viewed as [N, 1, C, H·W], summed over n channels by a Conv with a ones kernel and pads n/2 before and
        // n/2 − 1 after, and y = x · (k + α/n · sum)^−β.
        string Constant(string name, float[] values, params long[] dims)
        {
            var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
            t.Dims.AddRange(dims);
            t.RawData = ByteString.CopyFrom(LittleEndianBytes(values));
            graph.Initializer.Add(t);
            tensors[name] = null;
            return name;
        }
        string ShapeConstant(string name, params long[] dims)
        {
            var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
            t.Dims.Add(dims.Length);
            t.Int64Data.AddRange(dims);
            graph.Initializer.Add(t);
            tensors[name] = null;
            return name;
        }
        void EvenLrn(LayerDescription l)
        {
            int n = l.LrnSize, c = l.Input.C, h = l.Input.H, w = l.Input.W;
            string x = current, p = l.Name + ".lrn_";
            var ones = new float[n];
            Array.Fill(ones, 1f);
            Node("Mul", p + "square", x, x);
            Node("Reshape", p + "channels_by_pixels", current, ShapeConstant(p + "shape_in", 0, 1, c, (long)h * w));
            NodeProto sum = Node("Conv", p + "window_sum", current, Constant(p + "window", ones, 1, 1, n, 1));
            sum.Attribute.Add(Ints("kernel_shape", n, 1));
            sum.Attribute.Add(Ints("pads", n / 2, 0, n / 2 - 1, 0));
            Node("Reshape", p + "sum", current, ShapeConstant(p + "shape_out", 0, c, h, w));
            Node("Mul", p + "scaled", current, Constant(p + "alpha_over_n", new[] { (float)(l.Alpha / n) }));
            Node("Add", p + "plus_k", current, Constant(p + "k", new[] { (float)l.K }));
            Node("Pow", p + "power", current, Constant(p + "minus_beta", new[] { (float)-l.Beta }));
            Node("Mul", l.Name, x, current);
        }

        foreach (LayerDescription l in layers)
        {
            switch (l.Type)
            {
                case LayerType.Conv2D:
                {
                    var inputs = new List<string> { current, Param(l, "weight") };
                    if (l.HasBias) inputs.Add(Param(l, "bias"));
                    NodeProto conv = Node("Conv", l.Name, inputs.ToArray());
                    Window(conv, l);
                    Activation(l, l.Activation);
                    break;
                }
                case LayerType.Dense:
                {
                    if (image) { Node("Flatten", l.Name + ".flatten", current).Attribute.Add(Int("axis", 1)); image = false; }
                    var inputs = new List<string> { current, Param(l, "weight") };
                    if (l.HasBias) inputs.Add(Param(l, "bias"));
                    NodeProto gemm = Node("Gemm", l.Name, inputs.ToArray());
                    gemm.Attribute.Add(Int("transB", 1));
                    Activation(l, l.Activation);
                    break;
                }
                case LayerType.MaxPool2D:
                    Window(Node("MaxPool", l.Name, current), l);
                    break;
                case LayerType.AvgPool2D:
                {
                    NodeProto pool = Node("AveragePool", l.Name, current);
                    Window(pool, l);
                    // Integer padding counts the padded zeros (PyTorch); Same padding divides by the real cells (Keras).
                    pool.Attribute.Add(Int("count_include_pad", l.SamePadding ? 0 : 1));
                    break;
                }
                case LayerType.GlobalAvgPool2D:
                    Node("GlobalAveragePool", l.Name, current);
                    Node("Flatten", l.Name + ".flatten", current).Attribute.Add(Int("axis", 1)); // [N, C, 1, 1] → [N, C]
                    image = false;
                    break;
                case LayerType.Flatten:
                    Node("Flatten", l.Name, current).Attribute.Add(Int("axis", 1));
                    image = false;
                    break;
                case LayerType.BatchNorm:
                {
                    NodeProto bn = Node("BatchNormalization", l.Name, current, Param(l, "weight"), Param(l, "bias"), Param(l, "running_mean"), Param(l, "running_var"));
                    bn.Attribute.Add(Float("epsilon", 1e-5));
                    bn.Attribute.Add(Float("momentum", 0.9)); // ONNX's momentum weighs the old statistic (PyTorch's 0.1); unused in inference
                    break;
                }
                case LayerType.Dropout:
                    break; // identity in inference
                case LayerType.LocalResponseNorm:
                {
                    if (!image)
                        throw new NotSupportedException($"ONNX export: layer '{l.Name}' (LocalResponseNorm) on a vector input: ONNX LRN takes [N, C, H, W] only.");
                    if (l.LrnSize % 2 == 0)
                    {
                        EvenLrn(l);
                        break;
                    }
                    NodeProto lrn = Node("LRN", l.Name, current);
                    lrn.Attribute.Add(Int("size", l.LrnSize));
                    lrn.Attribute.Add(Float("alpha", l.Alpha));
                    lrn.Attribute.Add(Float("beta", l.Beta));
                    lrn.Attribute.Add(Float("bias", l.K));
                    break;
                }
                case LayerType.ReLU: Node("Relu", l.Name, current); break;
                case LayerType.LeakyReLU: Node("LeakyRelu", l.Name, current).Attribute.Add(Float("alpha", l.Slope)); break;
                case LayerType.Sigmoid: Node("Sigmoid", l.Name, current); break;
                case LayerType.Tanh: Node("Tanh", l.Name, current); break;
                case LayerType.Softmax:
                    if (image) throw new NotSupportedException($"ONNX export: layer '{l.Name}' (Softmax) on an image shape.");
                    Node("Softmax", l.Name, current).Attribute.Add(Int("axis", 1));
                    break;
                default:
                    throw new NotSupportedException($"ONNX export: layer '{l.Name}' of kind {l.Type} has no ONNX equivalent here.");
            }
        }

        // The last value is the graph's output.
        if (graph.Node.Count == 0 || current == "input") Node("Identity", "output", current);
        else
        {
            NodeProto last = graph.Node[graph.Node.Count - 1];
            last.Output[0] = "output";
        }

        var model = new ModelProto
        {
            IrVersion = 7,
            ProducerName = "Unrolled",
            ProducerVersion = typeof(OnnxExport).Assembly.GetName().Version?.ToString() ?? "",
            Graph = graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        return model;
    }

    private static ValueInfoProto Value(string name, LayerShape shape)
    {
        var tensor = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = new TensorShapeProto() };
        tensor.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "N" });
        tensor.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = shape.C });
        if (!shape.IsVector)
        {
            tensor.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = shape.H });
            tensor.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = shape.W });
        }
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensor } };
    }

    private static byte[] LittleEndianBytes(ReadOnlySpan<float> data)
    {
        var bytes = new byte[data.Length * sizeof(float)];
        if (BitConverter.IsLittleEndian) MemoryMarshal.AsBytes(data).CopyTo(bytes);
        else
            for (int i = 0; i < data.Length; i++)
                System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), data[i]);
        return bytes;
    }

    private static AttributeProto Int(string name, long value)
        => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    private static AttributeProto Float(string name, double value)
        => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = (float)value };

    private static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }
}
