using System;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Unrolled.Generator.Model;

namespace Unrolled.Generator;

/// <summary>
/// The incremental pipeline: [Network] classes → parsed model (shapes inferred once) → diagnostics and source.
/// The model holds no symbols, syntax or locations, so an edit that does not change a network leaves
/// every step after the parse cached.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class NetworkGenerator : IIncrementalGenerator
{
    /// <summary>Names of the pipeline steps, for the incremental-caching tests.</summary>
    public static class Steps
    {
        public const string Parse = "Parse";
        public const string Diagnostics = "Diagnostics";
        public const string Spec = "Spec";
    }

    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        IncrementalValuesProvider<ParseResult> parsed = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                Parser.NetworkAttributeName,
                static (node, _) => node is TypeDeclarationSyntax,
                static (ctx, ct) => Parser.Parse(ctx, ct))
            .WithTrackingName(Steps.Parse);

        // Diagnostics travel as their own output, as plain data.
        IncrementalValuesProvider<EquatableArray<DiagnosticInfo>> diagnostics = parsed
            .Select(static (r, _) => r.Diagnostics)
            .Where(static d => d.Count > 0)
            .WithTrackingName(Steps.Diagnostics);
        // Locations are rebuilt on the compilation's own syntax trees, so that #pragma warning disable applies.
        // This step reruns on edits, but only for networks that have diagnostics; the source output never waits on it.
        context.RegisterSourceOutput(diagnostics.Combine(context.CompilationProvider), static (spc, pair) =>
        {
            foreach (DiagnosticInfo d in pair.Left) spc.ReportDiagnostic(d.ToDiagnostic(pair.Right));
        });

        IncrementalValueProvider<bool> allowUnsafe = context.CompilationProvider
            .Select(static (c, _) => c.Options is CSharpCompilationOptions { AllowUnsafe: true });

        IncrementalValuesProvider<((NetworkSpec Spec, string HintName, LocationInfo? Location) Item, bool AllowUnsafe)> specs = parsed
            .Where(static r => r.Spec is not null)
            .Select(static (r, _) => (r.Spec!, r.HintName, r.Location))
            .WithTrackingName(Steps.Spec)
            .Combine(allowUnsafe);
        context.RegisterSourceOutput(specs, static (spc, pair) =>
        {
            var item = pair.Item;
            if (!pair.AllowUnsafe)
            {
                spc.ReportDiagnostic(Diagnostic.Create(Diagnostics.UnsafeNotAllowed, item.Location?.ToLocation(), item.Spec.ClassName));
                return;
            }
            string source;
            try
            {
                source = Emitter.Emit(item.Spec);
            }
            catch (Exception e)
            {
                // Never let an exception escape (that is CS8785 and a silently missing class).
                spc.ReportDiagnostic(Diagnostic.Create(Diagnostics.InternalError, null, item.Spec.ClassName, e.GetType().Name + ": " + e.Message));
                return;
            }
            spc.AddSource(item.HintName, source);
        });
    }
}
