using Unrolled.Generator.Model;
using static Unrolled.Generator.CodeWriter;

namespace Unrolled.Generator;

internal static partial class Emitter
{
    /// <summary>The structured layer list (<c>INetwork.Layers</c>): every layer as the parser resolved it, for exporters.</summary>
    private static void EmitDescription(CodeWriter w, NetworkSpec net)
    {
        static string Shape(Shape s) => $"new global::Unrolled.LayerShape({s.C}, {s.H}, {s.W}, {(s.IsFlat ? "true" : "false")})";
        static string B(bool b) => b ? "true" : "false";

        using (w.Block("private static readonly global::Unrolled.LayerDescription[] s_layers =", ";"))
        {
            foreach (LayerSpec l in net.Layers)
            {
                bool window = l.Kind is LayerKind.Conv2D or LayerKind.MaxPool2D or LayerKind.AvgPool2D;
                bool lrn = l.Kind == LayerKind.LocalResponseNorm;
                double slope = l.Kind == LayerKind.LeakyReLU ? l.Slope
                    : l.Activation == Act.LeakyReLU && l.Kind is LayerKind.Conv2D or LayerKind.Dense ? FusedLeakySlope : 0;
                string act = l.Kind is LayerKind.Conv2D or LayerKind.Dense ? l.Activation.ToString() : "None";
                w.Line($"new global::Unrolled.LayerDescription(global::Unrolled.LayerType.{l.Kind}, {Str(l.Name)}, {Shape(l.Input)}, {Shape(l.Output)}, "
                    + (window ? $"{l.KernelH}, {l.KernelW}, {l.Stride}, {l.PadTop}, {l.PadBottom}, {l.PadLeft}, {l.PadRight}, {B(l.SamePadding)}, " : "0, 0, 0, 0, 0, 0, 0, false, ")
                    + $"{B(l.Kind is LayerKind.Conv2D or LayerKind.Dense && l.HasBias)}, global::Unrolled.Activation.{act}, {D(slope)}, "
                    + (lrn ? $"{l.LrnSize}, {D(l.Alpha)}, {D(l.Beta)}, {D(l.K)}, " : "0, 0.0, 0.0, 0.0, ")
                    + $"{D(l.Kind == LayerKind.Dropout ? l.P : 0)}),");
            }
        }
        w.Line("/// <summary>Every layer as the generator resolved it (shapes, windows, explicit padding), in declaration order.</summary>");
        w.Line("public global::System.Collections.Generic.IReadOnlyList<global::Unrolled.LayerDescription> Layers => s_layers;");
        w.Line();
    }
}
