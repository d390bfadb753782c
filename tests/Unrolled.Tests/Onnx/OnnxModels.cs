using System;
using System.Linq;
using Google.Protobuf;
using Unrolled.Formats.Onnx.Proto;

namespace Unrolled.Tests.Onnx;

/// <summary>Small ONNX models built by hand for the importer's bad-input tests: a valid one, then mutated.</summary>
internal static class OnnxModels
{
    /// <summary>input [N, 1, 4, 4] → Conv c (2 filters 3×3) → Relu → Flatten → Gemm fc (3 units, transB) → output.</summary>
    public static ModelProto Small(int opset = 13)
    {
        var g = new GraphProto { Name = "small" };
        g.Input.Add(Value("input", -1, 1, 4, 4));
        g.Output.Add(Value("output", -1, 3));
        g.Initializer.Add(Floats("c.weight", Enumerable.Range(0, 18).Select(i => (i % 5 - 2) * 0.1f).ToArray(), 2, 1, 3, 3));
        g.Initializer.Add(Floats("c.bias", new[] { 0.1f, -0.2f }, 2));
        g.Initializer.Add(Floats("fc.weight", Enumerable.Range(0, 24).Select(i => (i % 7 - 3) * 0.05f).ToArray(), 3, 8));
        g.Initializer.Add(Floats("fc.bias", new[] { 0.01f, 0.02f, 0.03f }, 3));
        g.Node.Add(Node("Conv", "c", new[] { "input", "c.weight", "c.bias" }, new[] { "c_out" }, Ints("kernel_shape", 3, 3)));
        g.Node.Add(Node("Relu", "relu", new[] { "c_out" }, new[] { "r_out" }));
        g.Node.Add(Node("Flatten", "flat", new[] { "r_out" }, new[] { "f_out" }, Int("axis", 1)));
        g.Node.Add(Node("Gemm", "fc", new[] { "f_out", "fc.weight", "fc.bias" }, new[] { "output" }, Int("transB", 1)));
        var m = new ModelProto { IrVersion = 7, ProducerName = "test", Graph = g };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        return m;
    }

    public static byte[] Bytes(ModelProto m) => m.ToByteArray();

    public static ValueInfoProto Value(string name, params long[] dims)
    {
        var t = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = new TensorShapeProto() };
        foreach (long d in dims)
            t.Shape.Dim.Add(d < 0 ? new TensorShapeProto.Types.Dimension { DimParam = "N" } : new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = t } };
    }

    public static TensorProto Floats(string name, float[] values, params long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        t.RawData = ByteString.CopyFrom(bytes);
        return t;
    }

    public static TensorProto Longs(string name, params long[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.Add(values.Length);
        t.Int64Data.AddRange(values);
        return t;
    }

    /// <summary>Puts a Pad (pads t, l, b, r on H and W) and then <paramref name="op"/> between the Relu and the Flatten
    /// of <see cref="Small"/>; with <paramref name="beforeRelu"/> the Pad and the op go between the Conv and the Relu.</summary>
    public static ModelProto WithPad(string op, long t, long l, long b, long r, bool beforeRelu = false, params AttributeProto[] attributes)
    {
        ModelProto m = Small();
        GraphProto g = m.Graph;
        g.Initializer.Add(Longs("pads", 0, 0, t, l, 0, 0, b, r));
        string from = beforeRelu ? "c_out" : "r_out";
        NodeProto next = beforeRelu ? Find(m, "relu") : Find(m, "flat");
        next.Input[0] = "pooled";
        g.Node.Add(Node("Pad", "pad", new[] { from, "pads" }, new[] { "padded" }));
        g.Node.Add(Node(op, "pool", new[] { "padded" }, new[] { "pooled" }, attributes));
        // The pools of the tests leave 2 channels of 1 × 1: the dense layer has 2 inputs.
        TensorProto fc = g.Initializer.First(i => i.Name == "fc.weight");
        g.Initializer.Remove(fc);
        g.Initializer.Add(Floats("fc.weight", new[] { 0.5f, -0.25f, 0.125f, 1f, -1f, 0.75f }, 3, 2));
        return m;
    }

    public static NodeProto Node(string op, string name, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var n = new NodeProto { OpType = op, Name = name };
        n.Input.AddRange(inputs);
        n.Output.AddRange(outputs);
        n.Attribute.AddRange(attributes);
        return n;
    }

    public static AttributeProto Int(string name, long v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = v };

    public static AttributeProto Ints(string name, params long[] v)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(v);
        return a;
    }

    public static NodeProto Find(ModelProto m, string name) => m.Graph.Node.First(n => n.Name == name);
}
